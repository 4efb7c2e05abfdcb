"""``smmcl-evaluate``: mIoU and friends of a checkpoint on a dataset split.

Usage::

    smmcl-evaluate --checkpoint runs/x/best.pth                     # data of the training run
    smmcl-evaluate --checkpoint ckpt.pth --dataset mfnet --root data/MFNet --split test_night
    smmcl-evaluate --checkpoint ckpt.pth --config training/configs/mfnet_mscan_b.yaml
                   [--crop 480 640] [--scales 0.75 1 1.25] [--flip] [--out DIR]
                   [--backend torch|auto|openvino|onnxruntime|tensorrt]
    smmcl-evaluate --checkpoint ckpt.pth --drop-aux     # what a dead depth/thermal camera costs

The split defaults to the training run's validation split (``data.val_split``; ``auto``
rebuilds the same carve of the training split); the test split is scored only when named
with ``--split``.

``--drop-aux`` / ``--drop-rgb`` replace that modality by an all-zero raw image (invalid
depth, coldest thermal, black RGB) after normalisation, which is what the ROS node feeds
with ``on_missing_aux: rgb_only``.

The dataset, preprocessing and inference settings (sliding window, scales, flip) default to
the ones stored in the checkpoint's config (for an imported release: its meta
``eval_protocol``, the released 480x640 window, stride 2/3, scale 1, no flip, and its input
conventions), and the numbers come from the same
``training.loop.evaluate`` the training run calls, so the mIoU equals the one the training run
reported for that checkpoint and split. ``--backend`` runs the network through an inference
engine instead (``smmcl_core.engines``; same predictions on >= 99.5% of pixels, faster on CPU);
the default ``torch`` keeps the training run's arithmetic.

Writes into ``--out`` (default ``<checkpoint folder>/eval_<split>``): ``report.json``
(mIoU with and without background, per-class IoU and accuracy, pixel and mean accuracy, the
confusion matrix), ``confusion.png`` and, for the first ``--max-images`` images,
``pred/NAME.png`` (colorize_labelsd prediction) and ``panel/NAME.png`` (RGB | ground truth |
prediction).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time
from typing import Any, Dict, List, Optional

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from smmcl_core.checkpoint import load_checkpoint
from smmcl_core.cli.args import add_data_args, add_runtime_args, config_for_checkpoint
from smmcl_core.cli.common import parse_pair, run_cli
from smmcl_core.data import RGBXDataset
from smmcl_core.data.classes import background_index
from smmcl_core.data.experiment import check_compatible, dataset_from_config, validation_plan
from smmcl_core.data.preprocess import input_conventions
from smmcl_core.data.resize import restore_logits
from smmcl_core.data.splits import AUTO
from smmcl_core.inference import predict_logits
from smmcl_core.metrics import ConfusionMatrix
from smmcl_core.segmenter import Segmenter
from smmcl_core.training.loop import evaluate
from smmcl_core.utils.devices import resolve_device
from smmcl_core.visualize import colorize_labels, save_confusion_matrix

PROG = 'smmcl-evaluate'


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-evaluate``."""
    parser = argparse.ArgumentParser(prog=PROG,
                                     description='Evaluate an SMMCL checkpoint (mIoU).')
    parser.add_argument('--checkpoint', required=True, help='checkpoint (.pth) to evaluate')
    add_data_args(parser, "experiment YAML for the data (default: the checkpoint's own config)",
                  "split to evaluate (default: the config's val_split; name the test split "
                  'to score it)')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'),
                        help='sliding-window size (default: train.eval_crop)')
    parser.add_argument('--whole', action='store_true',
                        help='whole-image inference even if the config sets a window')
    parser.add_argument('--scales', type=float, nargs='+',
                        help='multi-scale factors (default: train.eval_scales)')
    parser.add_argument('--flip', action='store_true', help='add horizontal-flip averaging')
    drop = parser.add_mutually_exclusive_group()
    drop.add_argument('--drop-aux', action='store_true',
                      help='feed an all-zero (invalid) aux image: a dead depth/thermal camera')
    drop.add_argument('--drop-rgb', action='store_true',
                      help='feed an all-zero (black) RGB image: a dead colour camera')
    parser.add_argument('--out', help='output folder')
    parser.add_argument('--max-images', type=int, default=-1,
                        help='colorize_labelsd predictions to write (-1 = all, 0 = none)')
    add_runtime_args(parser, exact=True)
    parser.add_argument('--workers', type=int, default=2, help='data loader workers')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


class DroppedModality(Dataset):
    """A dataset view whose RGB or aux input is an all-zero raw image, preprocessed.

    The zero image goes through the dataset's own evaluation transform (input conventions,
    ranges, ``data.resize``), as the node's ``rgb_only`` frames go through ``Segmenter``.

    Args:
        dataset: Evaluation dataset yielding ``(rgb (3,h,w), aux (3,h,w), label (H,W))``.
        drop: ``'rgb'`` or ``'aux'``.
    """

    def __init__(self, dataset: RGBXDataset, drop: str):
        if drop not in ('rgb', 'aux'):
            raise ValueError(f"drop must be 'rgb' or 'aux', got {drop!r}")
        self.dataset = dataset
        self.drop = drop

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        rgb, aux, label = self.dataset[index]
        height, width = label.shape[-2:]  # the raw image size
        zero_rgb = np.zeros((height, width, 3), np.uint8)
        zero_aux = np.zeros((height, width, 3) if self.dataset.aux_modality == 'hha'
                            else (height, width), np.uint8)
        blank_rgb, blank_aux, _ = self.dataset.transform(
            zero_rgb, zero_aux, np.zeros((height, width), np.uint8))
        if self.drop == 'rgb':
            return blank_rgb, aux, label
        return rgb, blank_aux, label


def write_images(model: torch.nn.Module, dataset: RGBXDataset, out: Path, limit: int,
                 device: torch.device, settings: Dict[str, Any],
                 inputs: Optional[Dataset] = None) -> int:
    """Colourised predictions and RGB | ground truth | prediction panels.

    ``inputs`` (default ``dataset``) yields the network inputs, e.g. a
    :class:`DroppedModality` view.
    """
    inputs = dataset if inputs is None else inputs
    count = len(dataset) if limit < 0 else min(limit, len(dataset))
    if count == 0:
        return 0
    (out / 'pred').mkdir(parents=True, exist_ok=True)
    (out / 'panel').mkdir(parents=True, exist_ok=True)
    palette = dataset.palette
    names = getattr(dataset, 'names', None)
    for i in range(count):
        rgb_t, aux_t, _ = inputs[i]
        rgb_raw, _, label = dataset.raw_sample(i)
        with torch.inference_mode():
            logits = predict_logits(model, rgb_t[None].to(device), aux_t[None].to(device),
                                    dataset.num_classes, **settings)
            logits = restore_logits(logits, label.shape[:2])  # data.resize
        pred = logits[0].argmax(0).to(torch.uint8).cpu().numpy()  # (H,W)
        pred_rgb = colorize_labels(pred, palette)
        panel = np.concatenate([rgb_raw, colorize_labels(label, palette), pred_rgb], axis=1)
        stem = Path(str(names[i])).name if names else f'{i:06d}'
        for folder, image in (('pred', pred_rgb), ('panel', panel)):
            path = out / folder / f'{stem}.png'
            if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
                raise OSError(f'could not write {path}')
    return count


def report_dict(matrix: ConfusionMatrix, class_names: List[str], extra: Dict[str, Any]
                ) -> Dict[str, Any]:
    """JSON report: settings plus the metrics and the raw confusion matrix."""
    report = dict(extra)
    report['metrics'] = matrix.to_dict(class_names)
    report['confusion_matrix'] = matrix.matrix.cpu().tolist()
    return report


def print_summary(report: Dict[str, Any]) -> None:
    """Per-class table and the headline numbers."""
    metrics = report['metrics']

    def pct(value: Optional[float]) -> str:
        return '   n/a' if value is None else f'{100 * value:6.2f}'

    print(f'{"class":<20} {"IoU %":>6} {"acc %":>6} {"pixels":>10}')
    for name, row in metrics['per_class'].items():
        print(f'{name:<20} {pct(row["iou"])} {pct(row["accuracy"])} {row["pixels"]:>10}')
    if report.get('dropped_modality'):
        print(f'{report["dropped_modality"]} input dropped (all-zero image)')
    if report.get('background_class') is None:
        print('no background class (classes.yaml key background): mIoU w/o background = mIoU')
    print(f'mIoU {pct(metrics["miou"])}%  mIoU w/o background '
          f'{pct(metrics["miou_no_background"])}%  pixel acc {pct(metrics["pixel_accuracy"])}%  '
          f'mean acc {pct(metrics["mean_accuracy"])}%  ({report["images"]} images, '
          f'{report["seconds"]:.1f}s)')


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Evaluate and write the outputs; returns the report."""
    start = time.perf_counter()
    state = load_checkpoint(args.checkpoint, require=('model', 'meta'))
    cfg = config_for_checkpoint(args, state)
    meta = state['meta']
    # A checkpoint may carry the protocol its weights were published with (imported
    # releases); it beats the config, the command line beats both.
    protocol = meta.get('eval_protocol') or {}
    crop = parse_pair(args.crop, '--crop')
    if crop is None and not args.whole:
        crop = list(protocol.get('crop') or cfg.train.eval_crop) or None
    scales = list(args.scales or protocol.get('scales') or cfg.train.eval_scales)
    if not scales or min(scales) <= 0:
        raise ValueError(f'--scales (or train.eval_scales) must be positive numbers, got {scales}')
    flip = bool(args.flip or protocol.get('flip', cfg.train.eval_flip))
    split = cfg.data.val_split
    if split == AUTO:
        split_source = validation_plan(cfg).description
    else:
        split_source = f'dataset split {split!r}'
    drop = 'aux' if args.drop_aux else 'rgb' if args.drop_rgb else None

    dataset = dataset_from_config(cfg, split, train=False,
                                  conventions=input_conventions(meta))
    check_compatible(meta, dataset, args.checkpoint)
    device = resolve_device(args.device)
    # Plain memory format: the same arithmetic as the evaluation inside the training run.
    segmenter = Segmenter.from_checkpoint(args.checkpoint, device=device,
                                          precision=args.precision, channels_last=False,
                                          backend=args.backend)
    model = segmenter.engine  # called like the network; runs the backend and precision
    inputs = DroppedModality(dataset, drop) if drop else dataset
    loader = DataLoader(inputs, batch_size=1, shuffle=False, num_workers=args.workers)
    background = background_index(dataset.class_names, dataset.info.background)
    matrix = evaluate(model, loader, device, dataset.num_classes, dataset.ignore_index,
                      crop=crop, scales=scales, flip=flip, progress=not args.no_progress,
                      background_index=background)

    name = 'val' if split == AUTO else split
    default_out = f'eval_{name}' + (f'_drop_{drop}' if drop else '')
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / default_out
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(crop=crop, scales=scales, flip=flip)
    written = write_images(model, dataset, out, args.max_images, device, settings, inputs)
    report = report_dict(matrix, list(dataset.class_names), {
        'checkpoint': str(args.checkpoint), 'epoch': state.get('epoch'),
        'preset': meta['preset'], 'dataset': cfg.data.dataset, 'root': cfg.data.root,
        'split': name, 'split_source': split_source, 'dropped_modality': drop,
        'background_class': None if background is None else dataset.class_names[background],
        'aux_modality': dataset.aux_modality, 'images': len(dataset),
        'crop': crop, 'scales': scales, 'flip': flip, 'device': str(device),
        'backend': segmenter.backend, 'precision': segmenter.precision,
        'images_written': written, 'seconds': time.perf_counter() - start})
    with open(out / 'report.json', 'w') as f:
        json.dump(report, f, indent=2)
    save_confusion_matrix(matrix.matrix, list(dataset.class_names), out / 'confusion.png',
                          title=f'{meta["preset"]} on {cfg.data.dataset}/{name}')
    print_summary(report)
    print(f'{PROG}: report in {out / "report.json"}')
    return report


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``smmcl-evaluate``."""
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: run(args) and 0)


if __name__ == '__main__':
    raise SystemExit(main())
