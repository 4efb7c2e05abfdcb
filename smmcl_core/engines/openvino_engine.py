"""OpenVINO engine (CPU plugin): fp32 by default, bf16 where the CPU has native bf16.

The ONNX graph has dynamic height and width. OpenVINO's CPU plugin is fastest on static
shapes, so the model is read once and compiled per input shape (about a second; the padded
size of a camera stream never changes, so this happens once per stream), keeping the last
``max_shapes`` compiled shapes. OpenVINO's own model cache (``CACHE_DIR`` under the smmcl
cache) makes later compilations of the same shape faster; it holds one blob per graph and
shape, so the smmcl cache is trimmed to its size bound after each compilation.

Each compiled shape holds its own activation memory (about 150-200 MB for a 480x640 input of
the robot-sized presets), so few are kept: ``MAX_SHAPES`` = 2 (the stream's shape and the one
it changed from), or as many as one prediction uses (``Segmenter`` raises ``max_shapes`` to
its number of scales + 1). Measured with ``benchmarks/bench_node_cycles.py``-style size
changes over 6 padded shapes (issue 21): keeping 4 shapes, RSS climbed by ~100 MB over 10
rounds without levelling off (glibc keeps the freed activation arenas fragmented, malloc_trim
does not help); keeping 2, it was the same after every round (to the MiB) and ~400 MB lower.

Precision is always set explicitly: on CPUs with AMX / AVX512-BF16 OpenVINO would otherwise
pick bf16 by itself, and ``fp32`` must mean fp32.

Every engine (and :func:`cpu_supports_bf16`) uses ONE ``ov.Core`` per process, created on
first use and kept until the process exits. Each ``ov.Core`` loads its own CPU plugin, and the
CPU plugin (OpenVINO 2025/2026, ``intel_cpu::SigAltStackSetup``) replaces the creating
thread's alternate signal stack with a small ``mmap``-ed one, restores the stack it saw on
creation and unmaps its own when it is destroyed. Two cores destroyed in creation order (not
LIFO, e.g. by the garbage collector) leave the thread's alternate stack pointing at unmapped
memory; the next signal handled on it (every Python signal handler is installed with
``SA_ONSTACK``, e.g. torch DataLoader's ``SIGCHLD`` handler) writes its frame into whatever
was mapped there since, or faults: a SIGSEGV far from OpenVINO (issue 21). One core that
is never destroyed while the process runs installs one stack, once.
"""

from __future__ import annotations

from collections import OrderedDict
import functools
import os
from pathlib import Path
import time
from typing import Optional, Tuple

import numpy as np

from smmcl_core.engines.base import default_threads, Engine
from smmcl_core.engines.cache_size import trim_cache

_HINTS = {'fp32': 'f32', 'bf16': 'bf16'}
MAX_SHAPES = 2


@functools.lru_cache(maxsize=None)
def shared_core():
    """The process's one ``ov.Core`` (see the module docstring: never a second, never freed)."""
    import openvino as ov

    return ov.Core()


def cpu_supports_bf16() -> bool:
    """Whether OpenVINO's CPU plugin reports native bf16 (AVX512-BF16 or AMX)."""
    return 'BF16' in shared_core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


class OpenVINOEngine(Engine):
    """OpenVINO CPU inference on the exported graph.

    Args:
        onnx_path: Graph written by ``smmcl-export`` / the engine cache.
        precision: ``'fp32'`` or ``'bf16'`` (checked by :func:`supported_precision`).
        device: CPU only.
        num_classes: K.
        threads: Inference threads; ``None`` = ``engines.base.default_threads()`` (torch's
            count when torch is loaded, else ``OMP_NUM_THREADS``, else OpenVINO's default).
        cache_dir: smmcl cache folder; OpenVINO keeps compiled models in its ``openvino/``
            subfolder (None = no OpenVINO model cache).
    """

    name = 'openvino'
    PRECISIONS = ('fp32', 'bf16')
    runs_numpy = True

    def __init__(self, onnx_path: os.PathLike, precision: str, device: object,
                 num_classes: int, threads: Optional[int] = None,
                 cache_dir: Optional[os.PathLike] = None) -> None:
        super().__init__(precision, device, num_classes)
        self.path = Path(onnx_path)
        self.core = shared_core()
        self.model = self.core.read_model(str(self.path))
        self.config = {'INFERENCE_PRECISION_HINT': _HINTS[precision],
                       'PERFORMANCE_HINT': 'LATENCY'}
        threads = int(threads or default_threads())
        if threads > 0:
            self.config['INFERENCE_NUM_THREADS'] = threads
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        if self.cache_dir is not None:  # per compilation: the core is shared by every engine
            folder = self.cache_dir / 'openvino'
            folder.mkdir(parents=True, exist_ok=True)
            self.config['CACHE_DIR'] = str(folder)
        self._compiled: 'OrderedDict[Tuple[int, ...], object]' = OrderedDict()
        self.max_shapes = MAX_SHAPES  # compiled shapes kept (see the module docstring)
        self.static_hw = _static_shape(self.model)

    def _request(self, shape: Tuple[int, ...]):
        """An infer request compiled for ``shape`` (``(B,3,H,W)``), most recent kept."""
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        model = self.model.clone()
        model.reshape({'rgb': list(shape), 'aux': list(shape)})
        began = time.time()
        request = self.core.compile_model(model, 'CPU', self.config).create_infer_request()
        if self.cache_dir is not None:  # OpenVINO may have written a compiled blob
            trim_cache(self.cache_dir, used_since=began)
        self._compiled[shape] = request
        while len(self._compiled) > self.max_shapes:
            self._compiled.popitem(last=False)  # frees that compiled model and its memory
        return request

    def run(self, rgb: np.ndarray, aux: np.ndarray) -> np.ndarray:
        """See :meth:`Engine.run`."""
        request = self._request(tuple(rgb.shape))
        request.infer({'rgb': rgb, 'aux': aux})
        return request.get_output_tensor(0).data.copy()


def supported_precision(precision: str) -> Optional[str]:
    """Why ``precision`` cannot run here, or None when it can.

    bf16 is refused on every CPU for now: on an AMX CPU, OpenVINO 2026.4's bf16 CPU path read
    past the end of a buffer in a JIT bf16 reorder kernel (``vmovdqu16`` loads right at the end
    of a malloc arena: SIGSEGV in ``infer``, 3 of 3 runs of ``test/test_engines.py``; issue
    21). A perception process must not run on that.
    """
    if precision == 'bf16':
        import openvino as ov

        why = ('OpenVINO bf16 is disabled: its AMX bf16 CPU path reads past a buffer and '
               f'crashes the process (openvino {ov.__version__.split("-")[0]}, smmcl issue 21); '
               "use precision 'fp32'")
        return why if cpu_supports_bf16() else \
            'this CPU has no native bf16 (AVX512-BF16 or AMX)'
    return None


def _static_shape(model) -> Optional[Tuple[int, int]]:
    """(H, W) when the graph's input has fixed height and width, else None."""
    shape = model.input('rgb').get_partial_shape()
    if shape.rank.is_static and shape[2].is_static and shape[3].is_static:
        return shape[2].get_length(), shape[3].get_length()
    return None
