"""The engine cache's size bound: least recently used entries go, the ones in use stay.

Files on disk with set sizes and times for the ordering rules; the real export of the bundled
checkpoint and real OpenVINO compilations for the two places that write to the cache.
"""

import os
from pathlib import Path
import time

import numpy as np
import pytest

from smmcl_core.engines import available
from smmcl_core.engines.cache import cached_graph, find_cached_graph
from smmcl_core.engines.cache_size import DEFAULT_MAX_MB, max_cache_bytes, MAX_MB_ENV, trim_cache
from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

MB = 2 ** 20


def _file(path: Path, size_mb: float, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'\0' * int(size_mb * MB))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def filled(tmp_path) -> Path:
    """A cache folder: two graphs with manifests, two OpenVINO blobs, a write in progress."""
    _file(tmp_path / 'graphs' / 'a-1.onnx', 3, 400)
    _file(tmp_path / 'graphs' / 'a-1.json', 0.001, 400)
    _file(tmp_path / 'graphs' / 'b-2.onnx', 3, 100)
    _file(tmp_path / 'graphs' / 'b-2.json', 0.001, 100)
    _file(tmp_path / 'openvino' / '11.blob', 3, 300)
    _file(tmp_path / 'openvino' / '22.blob', 3, 10)
    _file(tmp_path / 'graphs' / '.c-3.onnx.x1.tmp', 3, 500)  # another process writing
    return tmp_path


def _names(root: Path) -> set:
    return {p.relative_to(root).as_posix() for p in root.rglob('*') if p.is_file()}


def test_oldest_entries_go_first_with_their_manifests(filled, monkeypatch):
    monkeypatch.setenv(MAX_MB_ENV, '7')  # 12 MB of entries: two of four must go
    removed = trim_cache(filled, used_since=time.time())
    assert {p.relative_to(filled).as_posix() for p in removed} == {
        'graphs/a-1.onnx', 'graphs/a-1.json', 'openvino/11.blob'}
    assert _names(filled) == {'graphs/b-2.onnx', 'graphs/b-2.json', 'openvino/22.blob',
                              'graphs/.c-3.onnx.x1.tmp'}


def test_entries_used_since_the_call_began_are_kept_over_the_bound(filled, monkeypatch):
    monkeypatch.setenv(MAX_MB_ENV, '1')
    trim_cache(filled, used_since=time.time() - 50)  # 22.blob was used 10 s ago
    assert _names(filled) == {'openvino/22.blob', 'graphs/.c-3.onnx.x1.tmp'}


def test_zero_means_no_bound_and_unset_means_the_default(filled, monkeypatch):
    monkeypatch.setenv(MAX_MB_ENV, '0')
    assert max_cache_bytes() is None
    assert trim_cache(filled, used_since=time.time()) == []
    monkeypatch.delenv(MAX_MB_ENV)
    assert max_cache_bytes() == DEFAULT_MAX_MB * MB
    monkeypatch.setenv(MAX_MB_ENV, '0.5')
    assert max_cache_bytes() == MB // 2


@pytest.mark.parametrize('value', ['lots', '-1', 'nan', '5GB'])
def test_a_bad_bound_names_the_variable(monkeypatch, tmp_path, value):
    monkeypatch.setenv(MAX_MB_ENV, value)
    with pytest.raises(ValueError, match=f'SMMCL_CACHE_MAX_MB must be a size in MB.*{value!r}'):
        trim_cache(tmp_path, used_since=time.time())


def test_a_new_export_evicts_the_least_recently_used_graph(tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    first = cached_graph(DEMO_CHECKPOINT, 'openvino', cache)  # one key per engine name
    size_mb = first.stat().st_size / MB
    monkeypatch.setenv(MAX_MB_ENV, str(1.5 * size_mb))  # room for one graph
    second = cached_graph(DEMO_CHECKPOINT, 'onnxruntime', cache)
    assert not first.exists() and not first.with_suffix('.json').exists()
    assert find_cached_graph(DEMO_CHECKPOINT, 'onnxruntime', cache) == second
    assert find_cached_graph(DEMO_CHECKPOINT, 'openvino', cache) is None
    # A hit counts as a use: the graph found last is the one the next export keeps.
    monkeypatch.setenv(MAX_MB_ENV, str(2.5 * size_mb))
    third = cached_graph(DEMO_CHECKPOINT, 'openvino', cache)
    old = time.time() - 600
    os.utime(third, (old, old))
    os.utime(third.with_suffix('.json'), (old, old))
    os.utime(second, (old - 60, old - 60))
    os.utime(second.with_suffix('.json'), (old - 60, old - 60))
    assert find_cached_graph(DEMO_CHECKPOINT, 'onnxruntime', cache) == second  # touched
    cached_graph(DEMO_CHECKPOINT, 'tensorrt', cache)
    assert second.exists() and not third.exists()


@pytest.mark.skipif(not available('openvino'), reason='needs openvino')
def test_openvino_compilations_stay_within_the_bound(tmp_path, monkeypatch):
    from smmcl_core.engines.openvino_engine import OpenVINOEngine

    cache = tmp_path / 'cache'
    graph = cached_graph(DEMO_CHECKPOINT, 'openvino', cache)
    monkeypatch.setenv(MAX_MB_ENV, str(graph.stat().st_size / MB + 1))
    engine = OpenVINOEngine(graph, 'fp32', 'cpu', 6, threads=1, cache_dir=cache)
    for size in (64, 96, 128):  # a compiled blob per shape, each about the graph's size
        x = np.zeros((1, 3, size, size), np.float32)
        assert engine.run(x, x).shape == (1, 6, size, size)
        blobs = list((cache / 'openvino').iterdir())
        assert len(blobs) == 1, blobs  # the blob just written; the graph went before it
