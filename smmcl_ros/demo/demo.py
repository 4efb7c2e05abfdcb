"""``smmcl-demo``: the embedded default, end to end over real ROS 2 topics.

Starts the real ``smmcl_segmentation`` node in its own process (the same command line the
launch file builds), replays frames to it over ROS 2 topics from this process, collects what it
publishes and writes colour masks, overlays and a summary to ``--out``:

- default: the bundled sample bag (held-out SYNTHETIC dark RGB-thermal scenes with labels) and
  the bundled checkpoint (``--checkpoint demo``, the node parameter ``checkpoint:=demo``); the
  summary has frames, mIoU and latency;
- ``--msrs DIR``: the real night RGB-thermal frames of MSRS (``visible/`` + ``thermal/``, e.g.
  ``../shared/data/msrs_night``); no labels, so the summary has frames and latency only. The
  bundled checkpoint never saw real images: this mode shows the pipeline on real sensor data,
  not accuracy.

Frames are sent one at a time and the next one goes out when the node's mask for the previous
stamp has arrived (lock-step), so every frame is segmented and the latency measured is
publish -> mask received. DDS traffic stays on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE``
defaults to LOCALHOST here, on a random domain); the caller's ``os.environ`` is left as it was.
Exit codes as :mod:`smmcl_ros.cli`.
"""

import argparse
import contextlib
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence

import cv2
import numpy as np

from smmcl_core.metrics import ConfusionMatrix
from smmcl_core.utils.stats import percentile
from smmcl_ros import cli, topics
from smmcl_ros.bags.errors import BagError
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.demo import bundled
from smmcl_ros.launch_args import node_command
from smmcl_ros.messages.image_codec import fill_image, image_to_array
from smmcl_ros.pipeline.stamps import header_ns, set_stamp

PROG = 'smmcl-demo'
RGB_TOPIC = topics.DEMO_RGB
AUX_TOPIC = topics.DEMO_AUX
OUT_TOPICS = ('mask', 'color', 'overlay')


class Sample(NamedTuple):
    """One recorded frame to publish, with its ground truth."""

    stamp: int  # ns
    rgb: np.ndarray  # (H,W,3) uint8
    aux: np.ndarray  # raw, as recorded
    aux_encoding: str
    label: Optional[np.ndarray]  # (H,W) uint8 train ids, or None
    frame_id: str


class DemoError(RuntimeError):
    """The demo cannot run (missing files, node did not start or answer)."""


def bag_frames(bag: Path, topics: Dict[str, str]) -> Iterator[Sample]:
    """Frames of a labelled bag, paired by identical header stamps (as smmcl-make-bag writes)."""
    by_stamp: Dict[int, Dict[str, Any]] = {}
    with BagReader(bag) as reader:
        reader.require_topics(topics.values(), 'sensor_msgs/msg/Image')
        names = {topic: key for key, topic in topics.items()}
        for message in reader.messages(topics.values()):
            msg = reader.deserialize(message)
            by_stamp.setdefault(header_ns(msg), {})[names[message.topic]] = msg
    for stamp in sorted(by_stamp):
        parts = by_stamp[stamp]
        if 'rgb' not in parts or 'aux' not in parts:
            continue
        label = image_to_array(parts['label']) if 'label' in parts else None
        yield Sample(stamp, image_to_array(parts['rgb']), image_to_array(parts['aux']),
                     parts['aux'].encoding, label, parts['rgb'].header.frame_id)


def msrs_frames(root: Path, limit: int) -> Iterator[Sample]:
    """Real MSRS night pairs ``visible/NAME.png`` + ``thermal/NAME.png``, 10 Hz stamps."""
    names = sorted(p.name for p in (root / 'visible').glob('*.png'))
    if not names:
        raise DemoError(f'no visible/*.png frames under {root}')
    start = time.time_ns()
    for i, name in enumerate(names[:limit] if limit else names):
        bgr = cv2.imread(str(root / 'visible' / name), cv2.IMREAD_COLOR)
        thermal = cv2.imread(str(root / 'thermal' / name), cv2.IMREAD_UNCHANGED)
        if bgr is None or thermal is None:
            raise DemoError(f'cannot read MSRS pair {name} under {root}')
        if thermal.ndim == 3:
            thermal = thermal[..., 0]
        encoding = 'mono16' if thermal.dtype == np.uint16 else 'mono8'
        yield Sample(start + i * 100_000_000, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), thermal,
                     encoding, None, 'thermal_camera')


ISOLATION = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID')


def _isolated_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('ROS_DOMAIN_ID', str(random.randint(120, 200)))
    return env


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while rclpy reads them (init, node creation), then restored."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _image_msg(image_cls: Any, image: np.ndarray, encoding: str, stamp: int,
               frame_id: str) -> Any:
    msg = image_cls()
    fill_image(msg, image, encoding)
    set_stamp(msg.header.stamp, stamp)
    msg.header.frame_id = frame_id
    return msg


def run_demo(frames: Sequence[Sample], checkpoint: str, out: Path, device: str = 'cpu',
             backend: str = 'auto', startup_timeout: float = 180.0,
             frame_timeout: float = 60.0) -> Dict[str, Any]:
    """Drive a node process with ``frames`` and write its outputs; returns the summary.

    Args:
        frames: What to publish, in order.
        checkpoint: The node's ``checkpoint`` parameter (``demo``: the bundled one).
        out: Output folder.
        device: The node's ``device``.
        backend: The node's ``backend``.
        startup_timeout: Seconds for the node to come up.
        frame_timeout: Seconds to wait for each mask.
    """
    import rclpy
    from sensor_msgs.msg import Image

    from smmcl_ros.node.qos import reliable
    from smmcl_ros.node.shutdown import init_rclpy

    env = _isolated_env()
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, '-m', 'smmcl_ros.node'] + node_command(
        rgb_topic=RGB_TOPIC, aux_topic=AUX_TOPIC, checkpoint=str(checkpoint), device=device,
        backend=backend)
    # Reliable on both ends: lock-step needs every frame, and loopback best-effort drops
    # large images under load.
    cmd += ['-p', 'qos:=reliable', '-p', 'publish_overlay:=true', '-p', 'publish_color:=true']
    log_path = out / 'node.log'
    log = open(log_path, 'w')
    node_proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    node = None
    received: Dict[str, Dict[int, Any]] = {name: {} for name in OUT_TOPICS}
    qos = reliable(10)
    try:
        # Inside the try: a failure here must still stop the node process.
        with _environ({key: env[key] for key in ISOLATION}):
            init_rclpy()
            node = rclpy.create_node('smmcl_demo')
        for name in OUT_TOPICS:
            node.create_subscription(
                Image, f'/segmentation/{name}',
                lambda msg, name=name: received[name].__setitem__(header_ns(msg), msg), qos)
        pub_rgb = node.create_publisher(Image, RGB_TOPIC, qos)
        pub_aux = node.create_publisher(Image, AUX_TOPIC, qos)
        deadline = time.monotonic() + startup_timeout
        while pub_rgb.get_subscription_count() < 1 or pub_aux.get_subscription_count() < 1 \
                or node.count_publishers('/segmentation/mask') < 1:
            if node_proc.poll() is not None:
                raise DemoError(f'node exited with {node_proc.returncode}; see {log_path}')
            if time.monotonic() > deadline:
                raise DemoError(f'node did not come up in {startup_timeout:.0f} s; see {log_path}')
            rclpy.spin_once(node, timeout_sec=0.1)
        time.sleep(0.5)  # let the reliable readers match before the first frame

        cm: Optional[ConfusionMatrix] = None
        latencies: List[float] = []
        missing = 0
        for index, (stamp, rgb, aux, aux_encoding, label, frame_id) in enumerate(frames):
            sent = time.perf_counter()
            pub_rgb.publish(_image_msg(Image, rgb, 'rgb8', stamp, frame_id))
            pub_aux.publish(_image_msg(Image, aux, aux_encoding, stamp, frame_id))
            deadline = time.monotonic() + frame_timeout
            while stamp not in received['mask'] and time.monotonic() < deadline:
                if node_proc.poll() is not None:
                    raise DemoError(f'node exited with {node_proc.returncode}; see {log_path}')
                rclpy.spin_once(node, timeout_sec=0.01)
            if stamp not in received['mask']:
                missing += 1
                continue
            latencies.append(time.perf_counter() - sent)
            # Colour and overlay go out right after the mask; give them a moment.
            extra_deadline = time.monotonic() + 5.0
            while time.monotonic() < extra_deadline and not all(
                    stamp in received[name] for name in ('color', 'overlay')):
                rclpy.spin_once(node, timeout_sec=0.01)
            mask = image_to_array(received['mask'][stamp])
            if label is not None:
                if cm is None:
                    cm = ConfusionMatrix(_num_classes(checkpoint), ignore_index=255)
                cm.update(_tensor(mask), _tensor(label))
            for name in ('color', 'overlay'):
                if stamp in received[name]:
                    rgb_out = image_to_array(received[name][stamp])
                    cv2.imwrite(str(out / f'{index:04d}_{name}.png'),
                                cv2.cvtColor(rgb_out, cv2.COLOR_RGB2BGR))
            for name in OUT_TOPICS:  # written out: do not hold every frame's images
                received[name].pop(stamp, None)
        summary: Dict[str, Any] = {
            'checkpoint': str(checkpoint),
            'frames_sent': len(frames),
            'masks_received': len(latencies),
            'frames_without_mask': missing,
            'latency_ms_p50': _ms(percentile(latencies, 50)),
            'latency_ms_p95': _ms(percentile(latencies, 95)),
        }
        if cm is not None:
            summary.update({'mIoU': cm.miou(), 'per_class_iou': cm.iou().tolist()})
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        if node_proc.poll() is None:
            node_proc.send_signal(signal.SIGINT)
            try:
                node_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node_proc.kill()
                node_proc.wait()
        log.close()
    summary['node_exit_code'] = node_proc.returncode
    with open(out / 'summary.json', 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


def _tensor(array: np.ndarray) -> Any:
    import torch
    return torch.from_numpy(np.ascontiguousarray(array).astype(np.int64))


def _num_classes(checkpoint: str) -> int:
    from smmcl_core.checkpoint import load_checkpoint
    return int(load_checkpoint(bundled.resolve_checkpoint(checkpoint))['meta']['num_classes'])


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds * 1000.0, 1)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=Path('demo_output'),
                        help='folder for colour masks, overlays, summary.json, node.log')
    parser.add_argument('--checkpoint', default=bundled.DEMO,
                        help=f'{bundled.DEMO!r}: the bundled demo checkpoint')
    parser.add_argument('--bag', type=Path, default=None,
                        help='default: the bundled sample bag')
    parser.add_argument('--msrs', type=Path, default=None,
                        help='run on real MSRS night pairs in this folder instead of a bag')
    parser.add_argument('--limit', type=int, default=0, help='at most this many frames')
    parser.add_argument('--device', default='cpu', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--backend', default='auto',
                        help='inference engine: auto (fastest installed), torch, openvino, '
                        'onnxruntime, tensorrt')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``smmcl-demo`` and ``python -m smmcl_ros.demo``."""
    args = build_parser().parse_args(argv)
    try:
        checkpoint = args.checkpoint
        path = Path(bundled.resolve_checkpoint(checkpoint))
        if not path.is_file():
            raise FileNotFoundError(f'checkpoint not found: {path}')
        if args.msrs is not None:
            frames = list(msrs_frames(args.msrs, args.limit))
        else:
            bag = args.bag or bundled.SAMPLE_BAG
            frames = list(bag_frames(bag, bundled.SAMPLE_TOPICS))
            frames = frames[:args.limit] if args.limit else frames
        if not frames:
            raise DemoError('no frames to replay')
        print(f'smmcl demo: {len(frames)} frames -> node ({Path(checkpoint).name}), '
              f'outputs in {args.out}/', flush=True)
    except (DemoError, OSError, ValueError, BagError) as exc:  # missing files, bag, topics
        return cli.fail(PROG, exc)
    try:
        summary = run_demo(frames, checkpoint, args.out, device=args.device,
                           backend=args.backend)
    except DemoError as exc:
        return cli.fail(PROG, exc, cli.FAILED)
    print(json.dumps({k: v for k, v in summary.items() if k != 'per_class_iou'}, indent=2))
    ok = summary['masks_received'] == summary['frames_sent'] and summary['node_exit_code'] == 0
    return 0 if ok else cli.FAILED


if __name__ == '__main__':
    sys.exit(main())
