"""One training run (:class:`Trainer`) and :func:`train`, what ``smmcl-train`` calls.

Writes into ``train.out_dir``: ``config.yaml`` (resolved), ``metrics.jsonl`` (one line per
epoch; evaluation fields on evaluated epochs), ``selection.json``, ``tb/`` (TensorBoard),
``last.pth`` (every ``train.ckpt_every`` epochs and at the end, full training state),
``best.pth`` (best mIoU, weights + metadata only), ``epoch_NNNN.pth`` every
``train.keep_every`` epochs (weights + metadata; 0 = none) and ``test.json`` when
``data.test_split`` is set.

Determinism: every epoch reseeds python/numpy/torch from ``(train.seed, epoch, rank)``, so a
run resumed from ``last.pth`` sees the same data order, augmentation and loss sampling as an
uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
import random
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler
from torch.utils.data.distributed import DistributedSampler

from smmcl_core.checkpoint import (build_checkpoint, load_checkpoint, meta_from_dataset_info,
                                   restore_rng, save_checkpoint, unwrap_model)
from smmcl_core.config import ExperimentConfig, save_config
from smmcl_core.data.check import check_datasets, format_report
from smmcl_core.data.classes import background_index
from smmcl_core.data.experiment import dataset_from_config, validation_plan
from smmcl_core.data.resize import check_resize
from smmcl_core.losses import SMMCLLoss
from smmcl_core.models import create_model
from smmcl_core.optim import build_optimizer, build_scheduler
from smmcl_core.training.distributed import (DistContext, distributed_env, eval_loader,
                                             init_distributed, shutdown_distributed)
from smmcl_core.training.loop import evaluate, train_one_epoch
from smmcl_core.training.records import append_jsonl, metrics_record, read_jsonl
from smmcl_core.utils.devices import resolve_device

PROG = 'smmcl-train'  # prefix of the run's log lines


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    seed = int(seed) % (2 ** 32)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def unused_parameters(model: nn.Module, device: torch.device) -> List[str]:
    """Trainable parameters that no output (logits, embeddings) depends on.

    Probed with one small forward/backward in eval mode, which leaves the BatchNorm
    statistics, the RNG and the (cleared) gradients untouched.
    """
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, 64, 64, device=device)
    try:
        outputs = model(x, x, return_embeddings=True)
        sum(o.float().sum() for o in outputs).backward()
        unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return unused


def resolve_resume(resume: str, out_dir: Path) -> Optional[Path]:
    """The checkpoint to resume from, or None for a fresh run."""
    if not resume:
        return None
    if resume == 'auto':
        last = out_dir / 'last.pth'
        return last if last.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f'--resume checkpoint not found: {path}')
    return path


class Trainer:
    """One training run: owns the model, optimiser, loaders and output folder."""

    def __init__(self, cfg: ExperimentConfig, ctx: DistContext, resume: Optional[Path]):
        self.cfg = cfg
        self.ctx = ctx
        self.device = resolve_device(cfg.train.device, ctx.local_rank)
        init_distributed(ctx, self.device)
        self.out_dir = Path(cfg.train.out_dir)
        seed_everything(cfg.train.seed + ctx.rank)

        self.val_plan = validation_plan(cfg)
        self.train_set = dataset_from_config(cfg, cfg.data.train_split, train=True)
        self.val_set = dataset_from_config(cfg, cfg.data.val_split, train=False)
        info = self.train_set.info
        if self.val_set.num_classes != info.num_classes:
            raise ValueError(f'train split has {info.num_classes} classes but val split has '
                             f'{self.val_set.num_classes}')
        self.info = info
        if cfg.data.check and cfg.data.dataset != 'synthetic' and ctx.is_main:
            # Every bad file of both splits at once, before the model is built.
            report = check_datasets({'train': self.train_set, 'val': self.val_set},
                                    progress=cfg.train.progress,
                                    resize=check_resize(cfg.data.resize))
            if report['problems']:
                raise ValueError(format_report(report, limit=20) + '\n(smmcl-check-data '
                                 'lists them all; data.check=false skips this scan)')
            for note in report['notes']:  # e.g. the map thermal_colormap: auto chose
                print(f'{PROG}: note: {note}', flush=True)
        self.meta = meta_from_dataset_info(cfg.model.name, info)
        if cfg.data.resize:
            self.meta['resize'] = [int(v) for v in cfg.data.resize]
        self.background = background_index(info.class_names, info.background)
        self.train_loader = self._train_loader()
        self.val_loader = eval_loader(self.val_set, cfg.data.workers, ctx)
        self.iters_per_epoch = len(self.train_loader)
        if cfg.train.max_iters_per_epoch > 0:
            self.iters_per_epoch = min(self.iters_per_epoch, cfg.train.max_iters_per_epoch)

        overrides = {}
        if cfg.model.drop_path_rate is not None:
            overrides['drop_path_rate'] = cfg.model.drop_path_rate
        if cfg.model.pretrained:
            # 'timm' = timm's hub weights for ResNet presets (needs network); else a local file.
            if cfg.model.pretrained != 'timm' and not Path(cfg.model.pretrained).is_file():
                raise FileNotFoundError(
                    f'model.pretrained file not found: {cfg.model.pretrained} (download the '
                    f'ImageNet weights there, or set model.pretrained= to start from scratch)')
            overrides['pretrained'] = cfg.model.pretrained
        model = create_model(cfg.model.name, info.num_classes, **overrides)
        if ctx.distributed and cfg.model.sync_bn and self.device.type == 'cuda':
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(self.device)
        self.optimizer = build_optimizer(model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.iters_per_epoch,
                                         cfg.train.epochs)
        self.amp = bool(cfg.train.amp and self.device.type == 'cuda')
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp)
        self.criterion_ce = nn.CrossEntropyLoss(ignore_index=info.ignore_index)
        lc = cfg.loss
        self.contrastive = SMMCLLoss(info.num_classes, temperature=lc.temperature,
                                     ignore_index=info.ignore_index, max_views=lc.max_views,
                                     max_samples=lc.max_samples, min_pixels=lc.min_pixels,
                                     mode=lc.mode)
        self.start_epoch = 0
        self.best_miou = float('-inf')
        if resume is not None:
            self._load(resume, model)
        if ctx.distributed:
            # The projectors get no gradient when only cross-entropy is trained, and some
            # presets hold parameters their decoder never reads.
            find_unused = lc.mode == 'none' or bool(unused_parameters(model, self.device))
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                find_unused_parameters=find_unused)
        self.model = model
        self.writer = None

    def _train_loader(self) -> DataLoader:
        cfg, ctx = self.cfg, self.ctx
        if cfg.train.batch_size % ctx.world_size:
            raise ValueError(f'train.batch_size {cfg.train.batch_size} is the global batch and '
                             f'must be divisible by the {ctx.world_size} DDP ranks')
        batch = cfg.train.batch_size // ctx.world_size
        if ctx.distributed:
            sampler: Sampler = DistributedSampler(self.train_set, ctx.world_size, ctx.rank,
                                                  shuffle=True, seed=cfg.train.seed,
                                                  drop_last=True)
        else:
            # Draws its permutation from the torch RNG, which is reseeded every epoch.
            sampler = RandomSampler(self.train_set)
        loader = DataLoader(self.train_set, batch_size=batch, sampler=sampler,
                            num_workers=cfg.data.workers, drop_last=True,
                            pin_memory=self.device.type == 'cuda')
        if len(loader) == 0:
            raise ValueError(
                f'training split {cfg.data.train_split!r} of {cfg.data.dataset!r} has '
                f'{len(self.train_set)} samples, fewer than one batch of {batch} per rank')
        return loader

    def _load(self, path: Path, model: nn.Module) -> None:
        state = load_checkpoint(path, map_location='cpu',
                                require=('model', 'meta', 'optimizer', 'scheduler', 'epoch'))
        if state['meta']['preset'] != self.cfg.model.name:
            raise ValueError(f'cannot resume from {path}: it holds preset '
                             f"{state['meta']['preset']!r}, the config asks for "
                             f'{self.cfg.model.name!r}')
        # The scheduler resumes at its saved step count but was rebuilt for this run's
        # iterations per epoch: if that number changed, the lr curve would silently shift.
        saved_iters = (state.get('extra') or {}).get('iters_per_epoch')
        if saved_iters is not None and int(saved_iters) != self.iters_per_epoch:
            raise ValueError(
                f'cannot resume from {path}: it ran {saved_iters} iterations per epoch, this '
                f'run has {self.iters_per_epoch} (train.batch_size, '
                'train.max_iters_per_epoch, the dataset size or the rank count changed)')
        model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        if state.get('scaler'):
            self.scaler.load_state_dict(state['scaler'])
        self.start_epoch = int(state['epoch'])
        best = (state.get('extra') or {}).get('best_miou')
        self.best_miou = float('-inf') if best is None else float(best)
        if 'rng' in state:
            restore_rng(state['rng'])
        self.log(f'resumed from {path} at epoch {self.start_epoch}')

    # ---------------------------------------------------------------- output (rank 0)
    def log(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.ctx.is_main:
            print(message, flush=True)

    def _prepare_output(self) -> None:
        if not self.ctx.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.out_dir / 'config.yaml')
        metrics = self.out_dir / 'metrics.jsonl'
        # Keep only records the resumed state has seen; a killed run may have written
        # lines past its last checkpoint.
        kept = [r for r in read_jsonl(metrics) if r.get('epoch', 0) <= self.start_epoch]
        with open(metrics, 'w') as f:
            for record in kept:
                f.write(json.dumps(record) + '\n')
        self._write_selection()
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(self.out_dir / 'tb'), purge_step=(
            self.start_epoch * self.iters_per_epoch if self.start_epoch else None))

    def _write_selection(self) -> None:
        """``selection.json``: which samples validate and whether they chose ``best.pth``."""
        cfg = self.cfg
        selection = {
            'val_split': cfg.data.val_split,
            'val_source': self.val_plan.description,
            'val_samples': len(self.val_set),
            'train_samples': len(self.train_set),
            'best_pth_selected_on': (self.val_plan.description if cfg.train.select_best
                                     else None),
            'test_split': cfg.data.test_split or None,
        }
        if not cfg.train.select_best:
            selection['note'] = ('train.select_best is false: no best.pth; the result is the '
                                 'last epoch (last.pth)')
        if self.val_plan.carved:
            selection['val_names'] = list(getattr(self.val_set, 'names', []))
        if cfg.train.select_best and 'test' in self.val_plan.split.lower():
            selection['warning'] = (f'best.pth is chosen on {self.val_plan.split!r}, a test '
                                    'split: its score is not an unbiased test score')
            self.log(f'{PROG}: warning: {selection["warning"]}')
        with open(self.out_dir / 'selection.json', 'w') as f:
            json.dump(selection, f, indent=2)

    def _checkpoint(self, completed: int, name: str, full: bool) -> None:
        state = build_checkpoint(
            self.model, self.cfg, self.meta,
            optimizer=self.optimizer if full else None,
            scheduler=self.scheduler if full else None,
            scaler=self.scaler if full else None, epoch=completed,
            extra={'best_miou': None if self.best_miou == float('-inf') else self.best_miou,
                   'iters_per_epoch': self.iters_per_epoch})
        save_checkpoint(self.out_dir / name, state)

    # ---------------------------------------------------------------- loop
    def run(self) -> Dict[str, Any]:
        """Train from ``start_epoch`` to ``train.epochs``; returns the last record."""
        cfg = self.cfg
        self._prepare_output()
        self.log(f'{PROG}: {cfg.model.name} on {cfg.data.dataset} ({self.info.aux_modality}), '
                 f'{len(self.train_set)} train / {len(self.val_set)} val samples, '
                 f'{self.iters_per_epoch} iters/epoch, device {self.device}, '
                 f'world size {self.ctx.world_size}, out_dir {self.out_dir}')
        record: Dict[str, Any] = {}
        epochs = cfg.train.epochs
        for epoch in range(self.start_epoch, epochs):
            # Per-epoch seed: identical randomness whether or not the run was resumed.
            seed_everything(cfg.train.seed + 1000003 * (epoch + 1) + self.ctx.rank)
            stats = train_one_epoch(
                self.model, self.criterion_ce, self.contrastive, cfg.loss, self.optimizer,
                self.scheduler, self.train_loader, self.device, epoch, scaler=self.scaler,
                amp=self.amp, writer=self.writer, log_every=cfg.train.log_every,
                max_iters=cfg.train.max_iters_per_epoch, progress=cfg.train.progress,
                grad_clip=cfg.optim.grad_clip)
            completed = epoch + 1
            record = {'epoch': completed, **{k: stats[k] for k in
                                             ('loss', 'ce', 'cm', 'vis', 'aux', 'lr')},
                      'lambda_scale': stats.get('lambda_scale', 1.0),
                      'seconds': stats['seconds']}
            last = completed == epochs
            if last or (cfg.train.eval_every > 0 and completed % cfg.train.eval_every == 0):
                self._sync_buffers()
                matrix = evaluate(unwrap_model(self.model), self.val_loader, self.device,
                                  self.info.num_classes, self.info.ignore_index,
                                  crop=cfg.train.eval_crop or None,
                                  scales=cfg.train.eval_scales, flip=cfg.train.eval_flip,
                                  progress=cfg.train.progress,
                                  background_index=self.background)
                record.update(metrics_record(matrix, self.info.class_names))
            self._finish_epoch(record, last)
        if cfg.data.test_split:
            self._score_test()
        if self.writer is not None:
            self.writer.close()
        return record

    def _score_test(self) -> None:
        """Score ``best.pth`` (or the last epoch) once on ``data.test_split``: ``test.json``."""
        cfg = self.cfg
        model = unwrap_model(self.model)
        best = self.out_dir / 'best.pth'
        chosen = 'last epoch'
        if cfg.train.select_best and best.is_file():
            self.ctx.barrier()
            model.load_state_dict(load_checkpoint(best, map_location='cpu')['model'])
            chosen = 'best.pth'
        test_set = dataset_from_config(cfg, cfg.data.test_split, train=False)
        matrix = evaluate(model, eval_loader(test_set, cfg.data.workers, self.ctx), self.device,
                          self.info.num_classes, self.info.ignore_index,
                          crop=cfg.train.eval_crop or None, scales=cfg.train.eval_scales,
                          flip=cfg.train.eval_flip, progress=cfg.train.progress,
                          background_index=self.background)
        record = {'split': cfg.data.test_split, 'weights': chosen,
                  **metrics_record(matrix, self.info.class_names)}
        if self.ctx.is_main:
            with open(self.out_dir / 'test.json', 'w') as f:
                json.dump(record, f, indent=2)
            self.log(f'{PROG}: test split {cfg.data.test_split!r} ({chosen}): mIoU '
                     f'{100 * record["miou"]:.2f}%')

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics), i.e. the checkpoint's.

        Without SyncBatchNorm each rank's running statistics drift apart after the last
        training forward; the sharded evaluation must score the model that is saved.
        """
        if not self.ctx.distributed:
            return
        for buffer in unwrap_model(self.model).buffers():
            torch.distributed.broadcast(buffer, src=0)

    def _finish_epoch(self, record: Dict[str, Any], last: bool) -> None:
        cfg, completed = self.cfg, record['epoch']
        improved = (cfg.train.select_best and 'miou' in record
                    and record['miou'] > self.best_miou)
        if improved:
            self.best_miou = record['miou']
        if self.ctx.is_main:
            line = (f'epoch {completed}/{cfg.train.epochs} loss {record["loss"]:.4f} '
                    f'(ce {record["ce"]:.4f} cm {record["cm"]:.4f} vis {record["vis"]:.4f} '
                    f'aux {record["aux"]:.4f}) lr {record["lr"]:.2e} '
                    f'{record["seconds"]:.1f}s')
            if 'miou' in record:
                line += (f' | mIoU {100 * record["miou"]:.2f}% (w/o bg '
                         f'{100 * record["miou_no_background"]:.2f}%) pixel acc '
                         f'{100 * record["pixel_acc"]:.2f}%')
                # Same x axis as the engine's per-iteration train/* scalars.
                step = completed * self.iters_per_epoch
                for key in ('miou', 'miou_no_background', 'pixel_acc', 'mean_acc'):
                    self.writer.add_scalar(f'val/{key}', record[key], step)
            self.writer.flush()
            print(line, flush=True)
            append_jsonl(self.out_dir / 'metrics.jsonl', record)
            if improved:
                self._checkpoint(completed, 'best.pth', full=False)
            every = cfg.train.ckpt_every
            if last or (every > 0 and completed % every == 0):
                self._checkpoint(completed, 'last.pth', full=True)
            keep = cfg.train.keep_every
            if keep > 0 and completed % keep == 0:
                self._checkpoint(completed, f'epoch_{completed:04d}.pth', full=False)
        self.ctx.barrier()


def train(cfg: ExperimentConfig, resume: str = '') -> Dict[str, Any]:
    """Run (or resume) one experiment in this process; returns the final epoch's record."""
    ctx = distributed_env()
    try:
        start = time.perf_counter()
        checkpoint = resolve_resume(resume, Path(cfg.train.out_dir))
        if resume == 'auto' and checkpoint is None and ctx.is_main:
            print(f'{PROG}: --resume auto: no {Path(cfg.train.out_dir) / "last.pth"}, '
                  'starting a fresh run', flush=True)
        trainer = Trainer(cfg, ctx, checkpoint)
        record = trainer.run()
        best = (f'best val mIoU {100 * trainer.best_miou:.2f}%'
                if trainer.best_miou > float('-inf') else 'no best.pth (select_best false)')
        trainer.log(f'{PROG}: done in {time.perf_counter() - start:.1f}s; {best}; '
                    f'checkpoints in {trainer.out_dir}')
        return record
    finally:
        shutdown_distributed()
