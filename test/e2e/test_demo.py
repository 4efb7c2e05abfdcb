"""The embedded default: bundled checkpoint + sample bag, and the demo command end to end."""

import json
from pathlib import Path
import re
import subprocess
import sys

import cv2
import pytest

from smmcl_core.checkpoint import load_checkpoint
from smmcl_ros.bags.eval_cli import main as bag_eval_main
from smmcl_ros.demo import bundled

REPO = Path(__file__).resolve().parents[2]


def _readme_figure() -> float:
    """The bundled-bag mIoU that README states (the test holds README to the file's truth)."""
    text = (REPO / 'README.md').read_text()
    match = re.search(r'bundled sample bag: mIoU ([0-9.]+)%', text)
    assert match, 'README must state "bundled sample bag: mIoU NN.NN%"'
    return float(match.group(1))


def test_bundled_assets_are_small_and_self_describing():
    ckpt = load_checkpoint(bundled.default_checkpoint())
    meta = ckpt['meta']
    assert meta['preset'] == 'smmcl_mit_b0'
    assert meta['aux_modality'] == 'thermal'
    assert len(meta['class_names']) == meta['num_classes'] == len(meta['palette'])
    assert 'optimizer' not in ckpt  # inference-only copy
    bag_bytes = sum(p.stat().st_size for p in bundled.SAMPLE_BAG.rglob('*') if p.is_file())
    assert bag_bytes < 5e6


def test_bundled_checkpoint_scores_readme_figure_on_bundled_bag(tmp_path):
    report = tmp_path / 'report.json'
    code = bag_eval_main([
        str(bundled.SAMPLE_BAG), '--checkpoint', str(bundled.DEMO_CHECKPOINT),
        '--rgb-topic', bundled.SAMPLE_TOPICS['rgb'], '--aux-topic', bundled.SAMPLE_TOPICS['aux'],
        '--label-topic', bundled.SAMPLE_TOPICS['label'], '--device', 'cpu',
        '--report', str(report), '--no-progress'])
    assert code == 0
    result = json.loads(report.read_text())
    miou = 100.0 * result['miou']
    assert miou == pytest.approx(_readme_figure(), abs=0.01)


def _run_demo(args, tmp_path, env):
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, '-m', 'smmcl_ros.demo', '--out', str(out), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr + (
        (out / 'node.log').read_text() if (out / 'node.log').exists() else '')
    return out, json.loads((out / 'summary.json').read_text())


@pytest.mark.ros
def test_demo_command_end_to_end(tmp_path, ros_env):
    out, summary = _run_demo([], tmp_path, ros_env)
    frames = summary['frames_sent']
    assert frames >= 8 and summary['masks_received'] == frames
    assert summary['node_exit_code'] == 0
    # The node's masks over ROS 2 equal what bag evaluation of the same bag reports.
    assert 100.0 * summary['mIoU'] == pytest.approx(_readme_figure(), abs=0.01)
    for i in range(frames):
        for kind in ('color', 'overlay'):
            image = cv2.imread(str(out / f'{i:04d}_{kind}.png'))
            assert image is not None and image.shape[:2] == (144, 192)
    assert summary['latency_ms_p50'] > 0


@pytest.mark.ros
def test_demo_on_real_msrs_night_frames(tmp_path, ros_env, shared_data):
    out, summary = _run_demo(['--msrs', str(shared_data / 'msrs_night'), '--limit', '3'],
                             tmp_path, ros_env)
    assert summary['frames_sent'] == summary['masks_received'] == 3
    assert 'mIoU' not in summary
    overlay = cv2.imread(str(out / '0000_overlay.png'))
    assert overlay.shape[:2] == (480, 640)
