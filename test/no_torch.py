"""A Python process in which torch is not installed, as on a runtime-only robot install.

Not a test module. :func:`install` puts a finder first on ``sys.meta_path`` that answers every
``torch`` / ``torchvision`` / ``timm`` / ``onnx`` import (and ``importlib.util.find_spec``)
with ``ModuleNotFoundError``, as Python does for a package that is not installed (the
``[openvino]`` / ``[onnxruntime]`` extras install none of them; ``onnxruntime`` is another
package and stays importable). Run a module
under it with ``python -m no_torch MODULE [ARGS...]`` (e.g. the ROS node), or prepend
:data:`PRELUDE` to ``python -c`` code.
"""

import importlib.abc
import runpy
import sys

BLOCKED = ('torch', 'torchvision', 'timm', 'onnx')


class NoTorchFinder(importlib.abc.MetaPathFinder):
    """Refuses the blocked packages and their submodules."""

    def find_spec(self, name, path=None, target=None):  # noqa: D102 - the finder protocol
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f'No module named {name!r} (blocked by test/no_torch.py)',
                                      name=name)
        return None


def install() -> None:
    """Block torch in this process (idempotent)."""
    if not any(isinstance(f, NoTorchFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, NoTorchFinder())


PRELUDE = 'import no_torch; no_torch.install()\n'

if __name__ == '__main__':
    install()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name='__main__', alter_sys=True)
