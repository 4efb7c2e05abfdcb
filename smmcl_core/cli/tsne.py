"""``smmcl-tsne``: t-SNE of the final encoder features of both modalities (paper Fig. 8).

Fig. 8 of the paper shows the final encoder features ``F_vis^4`` and ``F_aux^4`` (stage 4, the
features the projectors turn into contrastive embeddings) of Base (w/o SMMCL) and Ours
(w SMMCL), one point per feature-map position coloured by its class. This tool draws one row
per checkpoint (pass Base and Ours to reproduce the figure) and one column per modality.

Usage::

    smmcl-tsne --checkpoint runs/base/best.pth runs/ours/best.pth --out fig8.png
               [--config ...|--dataset NAME --root DIR --split test] [--features stage4|embedding]
               [--per-class 200] [--max-images 50]

Positions are labelled by nearest-neighbour downscaling of the ground truth to the stage-4
grid (as for the contrastive loss); ignored positions are skipped and at most ``--per-class``
positions per class and modality are drawn at random (same positions for both modalities).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from smmcl_core.checkpoint import load_checkpoint
from smmcl_core.cli.args import add_data_args, add_runtime_args, config_for_checkpoint
from smmcl_core.cli.common import run_cli
from smmcl_core.data import RGBXDataset
from smmcl_core.data.experiment import check_compatible, dataset_from_config
from smmcl_core.data.preprocess import input_conventions
from smmcl_core.losses import downscale_labels
from smmcl_core.segmenter import Segmenter
from smmcl_core.utils.devices import resolve_device

PROG = 'smmcl-tsne'
FEATURES = ('stage4', 'embedding')


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``smmcl-tsne``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint', required=True, nargs='+',
                        help='one or more checkpoints (one figure row each)')
    parser.add_argument('--out', required=True, help='output PNG')
    add_data_args(parser, "experiment YAML for the data (default: the first checkpoint's config)")
    parser.add_argument('--features', choices=FEATURES, default='stage4',
                        help='stage4 = encoder output F^4 (paper Fig. 8), embedding = '
                             'projector output')
    parser.add_argument('--per-class', type=int, default=200,
                        help='points per class and modality')
    parser.add_argument('--max-images', type=int, default=50, help='images to read')
    parser.add_argument('--perplexity', type=float, default=30.0)
    parser.add_argument('--seed', type=int, default=0)
    add_runtime_args(parser, exact=True, precision=False, backend=False)
    return parser


@torch.no_grad()
def collect_features(model: torch.nn.Module, dataset: RGBXDataset, max_images: int,
                     features: str, device: torch.device
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-position ``(vis (N,C), aux (N,C), labels (N,))`` over the first images."""
    model.eval()
    vis_all, aux_all, lab_all = [], [], []
    for i in range(min(max_images, len(dataset))):
        rgb, aux, label = dataset[i]
        rgb, aux = rgb[None].to(device), aux[None].to(device)
        _, vis_f, aux_f = model.encoder(rgb, aux)  # (1,C4,H/32,W/32) before interaction
        if features == 'embedding':
            vis_f, aux_f = model.projector_vis(vis_f), model.projector_aux(aux_f)
        small = downscale_labels(label[None], tuple(vis_f.shape[-2:]))[0]  # (h,w)
        keep = (small != dataset.ignore_index) & (small < dataset.num_classes)
        keep = keep.reshape(-1)
        vis_all.append(vis_f[0].flatten(1).T.cpu()[keep])  # (h*w, C) -> kept rows
        aux_all.append(aux_f[0].flatten(1).T.cpu()[keep])
        lab_all.append(small.reshape(-1)[keep])
    if not lab_all:
        raise ValueError('the dataset split is empty')
    return (torch.cat(vis_all).float().numpy(), torch.cat(aux_all).float().numpy(),
            torch.cat(lab_all).numpy())


def sample_per_class(labels: np.ndarray, per_class: int, rng: np.random.Generator
                     ) -> np.ndarray:
    """Indices of at most ``per_class`` random positions of every class present."""
    chosen = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        if idx.size > per_class:
            idx = rng.choice(idx, per_class, replace=False)
        chosen.append(np.sort(idx))
    return np.concatenate(chosen)


def embed_2d(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """Run sklearn t-SNE to 2-D (perplexity capped below the number of points)."""
    from sklearn.manifold import TSNE

    if len(features) < 3:
        raise ValueError(f'only {len(features)} labelled feature positions; use more images')
    perplexity = min(perplexity, (len(features) - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, init='pca', random_state=seed)
    return tsne.fit_transform(features)


def draw(panels: List[Dict], class_names: List[str], palette: np.ndarray, out: Path) -> Path:
    """Grid of scatter plots: one row per checkpoint, columns vis / aux."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(panels) // 2
    fig = Figure(figsize=(10, 4.6 * rows + 0.8))
    FigureCanvasAgg(fig)
    present = sorted({int(c) for p in panels for c in np.unique(p['labels'])})
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(rows, 2, k + 1)
        for cls in present:
            mask = panel['labels'] == cls
            if mask.any():
                ax.scatter(panel['xy'][mask, 0], panel['xy'][mask, 1], s=4,
                           color=palette[cls] / 255.0, label=class_names[cls])
        ax.set_title(panel['title'], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc='lower center', ncol=min(len(names), 7), markerscale=3,
               fontsize=8)
    fig.tight_layout(rect=(0, 0.06 if rows == 1 else 0.04, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def run(args: argparse.Namespace) -> Path:
    """Collect, sample, embed and draw; returns the PNG path."""
    if args.per_class < 1 or args.max_images < 1:
        raise ValueError('--per-class and --max-images must be >= 1')
    first = load_checkpoint(args.checkpoint[0], require=('model', 'meta'))
    cfg = config_for_checkpoint(args, first)
    dataset = dataset_from_config(cfg, cfg.data.val_split, train=False,
                                  conventions=input_conventions(first['meta']))
    device = resolve_device(args.device)
    panels = []
    for path in args.checkpoint:
        segmenter = Segmenter.from_checkpoint(path, device=device, channels_last=False)
        check_compatible(segmenter.meta, dataset, path)
        if segmenter.conventions != input_conventions(first['meta']):
            raise ValueError(f'checkpoint {path} expects input conventions '
                             f'{segmenter.conventions}, {args.checkpoint[0]} '
                             f"{input_conventions(first['meta'])}; plot them separately")
        vis, aux, labels = collect_features(segmenter.model, dataset, args.max_images,
                                            args.features, device)
        # The same positions for both modalities, so the two plots are comparable.
        idx = sample_per_class(labels, args.per_class, np.random.default_rng(args.seed))
        name = Path(path).parent.name + '/' + Path(path).name
        feat = 'F^4' if args.features == 'stage4' else 'embedding'
        for modality, values in (('vis', vis), (dataset.aux_modality, aux)):
            panels.append({'xy': embed_2d(values[idx], args.perplexity, args.seed),
                           'labels': labels[idx],
                           'title': f'{name}: {modality} {feat} ({len(idx)} points)'})
    out = draw(panels, list(dataset.class_names), dataset.palette, Path(args.out))
    print(f'{PROG}: wrote {out}')
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``smmcl-tsne``."""
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: run(args) and 0)


if __name__ == '__main__':
    raise SystemExit(main())
