"""Import structure of smmcl_core: numpy modules stay torch-free, and no import cycles."""

import ast
from pathlib import Path
import subprocess
import sys
from typing import Dict, List, Set

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / 'smmcl_core'

# What the ROS node and the bag tools import before any model is loaded.
TORCH_FREE = (
    'smmcl_core',
    'smmcl_core.data',
    'smmcl_core.data.hha',
    'smmcl_core.data.hha.intrinsics',
    'smmcl_core.data.classes',
    'smmcl_core.data.fixed_registration',
    'smmcl_core.data.io',
    'smmcl_core.data.preprocess',
    'smmcl_core.data.splits',
    'smmcl_core.data.thermal',
    'smmcl_core.data.resample',
    'smmcl_core.data.resize',
    'smmcl_core.utils.files',
    'smmcl_core.utils.stats',
    'smmcl_core.utils.devices',
    'smmcl_core.utils.optional',
    # The lean inference path (issue 20): an exported graph on OpenVINO / ONNX Runtime.
    'smmcl_core.meta',
    'smmcl_core.segmenter',
    'smmcl_core.inference_np',
    'smmcl_core.engines',
    'smmcl_core.engines.base',
    'smmcl_core.engines.cache',
    'smmcl_core.engines.load',
    'smmcl_core.engines.onnx_meta',
    'smmcl_core.engines.openvino_engine',
    'smmcl_core.engines.onnxruntime_engine',
)


@pytest.mark.parametrize('module', TORCH_FREE)
def test_module_does_not_import_torch(module):
    code = (f'import sys; import {module}; '
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]', f'import {module} loaded torch'


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _imports(path: Path, name: str, modules: Set[str], top_level: bool) -> Set[str]:
    """smmcl_core modules ``path`` imports.

    Args:
        path: The module's file.
        name: Its dotted name.
        modules: Every module of the package.
        top_level: Only the imports that run when the module is imported (module body, not
            inside functions), each with the packages above it that Python runs first
            (except the importing module's own packages, which are already running).
            Otherwise every import anywhere in the file (function level included), without
            parent packages.
    """
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    tree = ast.parse(path.read_text(), str(path))
    nodes = _module_level(tree.body) if top_level else ast.walk(tree)
    own_packages = {'.'.join(name.split('.')[:i]) for i in range(1, name.count('.') + 2)}
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            # ``from pkg import mod`` imports the module ``pkg.mod`` when there is one.
            targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if top_level:
                parts = target.split('.')
                found.update('.'.join(parts[:i]) for i in range(1, len(parts)))
            found.add(target)
    return {t for t in found if t in modules and t not in own_packages}


def _module_level(body: List[ast.stmt]) -> List[ast.stmt]:
    """Statements run at import time: the body, into if/try/with blocks, not into defs."""
    out = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # class bodies run at import, but none of ours imports in one
        out.append(node)
        for field in ('body', 'orelse', 'finalbody', 'handlers'):
            out.extend(_module_level(getattr(node, field, []) or []))
    return out


def _graph(top_level: bool = False) -> Dict[str, Set[str]]:
    paths = {_module_name(p): p for p in PACKAGE_ROOT.rglob('*.py')}
    modules = set(paths)
    return {name: _imports(path, name, modules, top_level) for name, path in paths.items()}


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as a list of modules, or [] when the graph is acyclic."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_cycle_finder_sees_a_cycle():
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert _cycle({'a': {'b'}, 'b': set()}) == []


def test_graph_sees_function_level_imports():
    graph = _graph()
    # segmenter is imported inside ``smmcl_core.__getattr__``: the walk must see it.
    assert 'smmcl_core.segmenter' in graph['smmcl_core']


def test_no_dependency_cycle_in_smmcl_core():
    """No cycle through any import, function-level ones included (none hides a cycle)."""
    cycle = _cycle(_graph())
    assert not cycle, 'import cycle: ' + ' -> '.join(cycle)


def test_no_import_time_cycle_in_smmcl_core():
    """No cycle in what importing runs, packages' ``__init__`` included."""
    cycle = _cycle(_graph(top_level=True))
    assert not cycle, 'import cycle at import time: ' + ' -> '.join(cycle)
