"""Memory and start-up of the node process per backend: peak RSS, RSS growth, time to ``ready``.

The real node process (``python -m smmcl_ros.node``) on the bundled demo checkpoint
(``smmcl_mit_b0``, thermal) is fed real 640x480 MSRS night pairs (``../shared/data/msrs_night``),
each pair published once the previous mask arrived. Per run it prints the start-up time (process
start to the node's ``ready`` log line), ``VmHWM`` (peak RSS) from ``/proc/<pid>/status``, the
RSS after every 10 frames (growth = last - first of those) and whether libtorch is mapped into
the process. Engines run on the cached export of the ``.pth`` (warmed first, in this process)
and, with ``--onnx``, on an exported ``.onnx`` given as the checkpoint::

    python benchmarks/bench_node_memory.py --frames 20
    python benchmarks/bench_node_memory.py --backends torch openvino --seeded smmcl_mscan_b
"""

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(key + ':'):
            return int(line.split()[1])
    raise RuntimeError(f'no {key} in /proc/{pid}/status')


def torch_mapped(pid: int) -> bool:
    """Whether the process has libtorch mapped (torch imported)."""
    return 'libtorch' in Path(f'/proc/{pid}/maps').read_text()


def main() -> None:
    """Run every (checkpoint, backend) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100)
    parser.add_argument('--backends', nargs='+', default=['torch', 'openvino', 'onnxruntime'])
    parser.add_argument('--onnx', action='store_true',
                        help='also run the engines on an exported .onnx checkpoint')
    parser.add_argument('--seeded', nargs='*', default=[], metavar='PRESET',
                        help='also run seeded random checkpoints of these presets')
    parser.add_argument('--threads', type=int, default=1, help='OMP_NUM_THREADS of the node')
    parser.add_argument('--domain', default='98', help='ROS_DOMAIN_ID for the run')
    args = parser.parse_args()
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=args.domain,
                      OMP_NUM_THREADS=str(args.threads))

    import ros_harness
    from smmcl_core.data.io import read_aux, read_rgb
    from smmcl_ros.demo.bundled import DEMO_CHECKPOINT

    folder = REPO.parent / 'shared' / 'data' / 'msrs_night'
    names = sorted(os.listdir(folder / 'visible'))
    pairs = [(read_rgb(folder / 'visible' / n), read_aux(folder / 'thermal' / n, 'thermal'))
             for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ['SMMCL_CACHE_DIR'] = str(tmp / 'cache')
        checkpoints = [('smmcl_mit_b0 (demo)', Path(DEMO_CHECKPOINT))]
        for preset in args.seeded:
            ros_harness.PRESET = preset
            checkpoints.append((f'{preset} (seeded)', ros_harness.make_checkpoint(
                tmp / f'{preset}.pth', modality='thermal')))
        rows = []
        for label, ckpt in checkpoints:
            for backend in args.backends:
                runs = [(ckpt, 'pth')]
                if backend != 'torch':
                    warm_cache(ckpt, backend)
                    if args.onnx:
                        runs.append((export_onnx(ckpt, tmp / f'{ckpt.stem}.onnx'), 'onnx'))
                for path, kind in runs:
                    log = tmp / f'{ckpt.stem}_{backend}_{kind}.log'
                    rows.append((label, backend, kind,
                                 run_node(ros_harness, path, backend, pairs, args.frames, log)))
    print(f'node process, 640x480 MSRS night pairs, {args.frames} frames, CPU, '
          f'OMP_NUM_THREADS={args.threads}')
    for label, backend, kind, r in rows:
        growth = r['rss'][-1] - r['rss'][0] if len(r['rss']) > 1 else 0.0
        print(f'{label:24s} {backend:11s} {kind:4s} start-up {r["startup_s"]:5.1f} s   peak RSS '
              f'{r["hwm"]:7.1f} MiB   growth {growth:+6.1f} MiB   torch loaded '
              f'{"yes" if r["torch"] else "no"}')
        print(f'    RSS every 10 frames (MiB): {" ".join(f"{v:.0f}" for v in r["rss"])}')


def warm_cache(ckpt: Path, backend: str) -> None:
    """Export ``ckpt`` for ``backend`` into the cache, as the node's first start would."""
    from smmcl_core.engines.cache import cached_graph

    cached_graph(ckpt, backend)


def export_onnx(ckpt: Path, out: Path) -> Path:
    """``smmcl-export --dynamic-hw`` of ``ckpt`` (once)."""
    if not out.is_file():
        from smmcl_core.cli import export as export_cli

        assert export_cli.main(['--checkpoint', str(ckpt), '--format', 'onnx', '--out',
                                str(out), '--dynamic-hw']) == 0
    return out


def run_node(ros_harness, ckpt: Path, backend: str, pairs, frames: int, log: Path) -> dict:
    """Start the node, feed ``frames`` pairs, return start-up, peak RSS and RSS samples."""
    start = time.monotonic()
    node = ros_harness.NodeProcess(dict(os.environ), dict(checkpoint=str(ckpt),
                                                          qos='reliable', backend=backend),
                                   log)
    pid = node.proc.pid
    while 'ready' not in node.output():
        if node.proc.poll() is not None or time.monotonic() - start > 300:
            raise RuntimeError(f'node did not get ready:\n{node.output()}')
        time.sleep(0.02)
    startup_s = time.monotonic() - start
    client = ros_harness.RosClient()
    rss = []
    try:
        client.wait_ready(node)
        for k in range(frames):
            rgb, thermal = pairs[k % len(pairs)]
            want = len(client.received['mask']) + 1
            client.rgb_pub.publish(ros_harness.image_msg(rgb, 'rgb8', 1000 + k))
            client.aux_pub.publish(ros_harness.image_msg(thermal, 'mono8', 1000 + k))
            if not client.spin_until(lambda: len(client.received['mask']) >= want, 60.0):
                raise RuntimeError(f'no mask for frame {k}:\n{node.output()}')
            if (k + 1) % 10 == 0:
                rss.append(status_kib(pid, 'VmRSS') / 1024)
        hwm = status_kib(pid, 'VmHWM') / 1024
        torch = torch_mapped(pid)
    finally:
        client.close()
        code = node.stop()
    if code != 0:
        print(node.output())
    return dict(startup_s=startup_s, hwm=hwm, rss=rss, torch=torch)


if __name__ == '__main__':
    main()
