"""Error and status lines of the ROS command-line tools, one convention for all four.

``smmcl-bag-eval``, ``smmcl-make-bag``, ``smmcl-replay`` and ``smmcl-demo`` print
``prog: error: message`` on stderr, as argparse does, and exit with:

- :data:`USAGE` (2): bad arguments or input the user must fix (missing file, unknown topic,
  unsupported encoding, unreadable checkpoint) — argparse's own code;
- :data:`FAILED` (1): the run itself failed (a damaged bag, nothing evaluated, the node did not
  answer);
- 0: success.
"""

import sys

USAGE = 2
FAILED = 1


def message_of(err: BaseException) -> str:
    """The text of an exception (a ``KeyError`` without its repr quotes)."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


def fail(prog: str, problem: object, code: int = USAGE) -> int:
    """Print ``prog: error: problem`` on stderr; returns ``code`` for ``main`` to return."""
    text = message_of(problem) if isinstance(problem, BaseException) else str(problem)
    print(f'{prog}: error: {text}', file=sys.stderr)
    return code


def status(prog: str, line: str) -> None:
    """Print ``prog: line`` on stderr (progress and summaries; stdout carries results)."""
    print(f'{prog}: {line}', file=sys.stderr)
