"""What every command-line tool shares: user errors as one line and exit status 2, H W pairs.

Argument groups shared between the tools are ``smmcl_core.cli.args``.
"""

from __future__ import annotations

import sys
from typing import Callable, List, Optional, Sequence


# Exceptions that mean "the user asked for something invalid" (bad key, file, value): the
# tools print them as one line and exit with status 2 instead of a traceback.
USER_ERRORS = (KeyError, ValueError, TypeError, FileNotFoundError)


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` and turn user errors into ``prog: error: message`` and exit status 2."""
    try:
        return int(body() or 0)
    except USER_ERRORS as exc:
        # KeyError wraps its message in quotes; show the bare text.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f'{prog}: error: {message}', file=sys.stderr)
        return 2


def parse_pair(values: Optional[Sequence[int]], what: str) -> Optional[List[int]]:
    """Validate an optional ``H W`` pair from the command line."""
    if values is None:
        return None
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f'{what} needs two positive integers H W, got {list(values)}')
    return [int(v) for v in values]
