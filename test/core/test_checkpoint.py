"""Checkpoint layout, safe loading, atomic writes and resume state."""

import os
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from smmcl_core.checkpoint import (build_checkpoint, build_meta, capture_rng, CheckpointError,
                                   load_checkpoint, META_KEYS, restore_rng, save_checkpoint)
from smmcl_core.config import ExperimentConfig, OptimConfig
from smmcl_core.optim import build_optimizer, build_scheduler


class Tiny(nn.Module):
    """Conv + BatchNorm net (has buffers, biases and norm weights)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        """Logits (and embeddings when asked)."""
        return self.head(torch.relu(self.norm(self.conv(x))))


def _meta():
    return build_meta('smmcl_mit_b0', 2, ['floor', 'person'], np.array([[1, 2, 3], [4, 5, 6]]),
                      'thermal', aux_ranges={'thermal_range': (7000, 9000)})


def _step(model, optimizer, scheduler, scaler, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 8, 8, generator=g)
    y = torch.randint(0, 2, (2, 8, 8), generator=g)
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()


class Payload:
    """Unpickling this runs os.mkdir(marker): a stand-in for malicious code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_round_trip_layout_and_plain_values(tmp_path):
    """Round trip layout and plain values."""
    torch.manual_seed(0)
    model = Tiny()
    cfg = ExperimentConfig()
    state = build_checkpoint(model, cfg, _meta(), epoch=3, extra={'best_miou': 0.5})
    path = save_checkpoint(tmp_path / 'sub' / 'ckpt.pth', state)
    loaded = load_checkpoint(path)
    assert loaded['format_version'] == 1
    assert set(loaded['meta']) == set(META_KEYS)
    assert loaded['meta']['palette'] == [[1, 2, 3], [4, 5, 6]]
    assert loaded['meta']['aux_ranges'] == {'thermal_range': [7000.0, 9000.0]}
    assert loaded['config'] == cfg.to_dict()
    assert ExperimentConfig.from_dict(loaded['config']) == cfg
    assert loaded['epoch'] == 3 and loaded['extra'] == {'best_miou': 0.5}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded['model'][key], value)


def test_ddp_style_wrapper_is_unwrapped():
    """Ddp style wrapper is unwrapped."""
    model = Tiny()
    state = build_checkpoint(nn.DataParallel(model), {}, _meta())
    assert set(state['model']) == set(model.state_dict())


def test_loading_never_executes_code(tmp_path):
    """Loading never executes code."""
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'format_version': 1, 'model': {}, 'meta': Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match='evil.pth'):
        load_checkpoint(evil)
    assert not marker.exists()
    # The payload is real: an unsafe load would have run it.
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_clear_errors_name_the_file(tmp_path):
    """Clear errors name the file."""
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint(tmp_path / 'missing.pth')

    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint at all' * 10)
    with pytest.raises(CheckpointError, match='garbage.pth'):
        load_checkpoint(garbage)

    good = save_checkpoint(tmp_path / 'good.pth', build_checkpoint(Tiny(), {}, _meta()))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match='truncated.pth'):
        load_checkpoint(truncated)

    plain = tmp_path / 'plain.pth'
    torch.save(Tiny().state_dict(), plain)
    with pytest.raises(CheckpointError, match='plain.pth.*not an smmcl checkpoint'):
        load_checkpoint(plain)

    with pytest.raises(CheckpointError, match='good.pth lacks key.*optimizer'):
        load_checkpoint(good, require=('model', 'optimizer'))

    state = load_checkpoint(good)
    del state['meta']['palette']
    no_palette = save_checkpoint(tmp_path / 'nopal.pth', state)
    with pytest.raises(CheckpointError, match='nopal.pth: meta lacks.*palette'):
        load_checkpoint(no_palette)
    with pytest.raises(CheckpointError, match='palette'):
        build_checkpoint(Tiny(), {}, state['meta'])


def test_failed_write_leaves_old_file_intact(tmp_path):
    """Failed write leaves old file intact."""
    path = tmp_path / 'ckpt.pth'
    save_checkpoint(path, build_checkpoint(Tiny(), {}, _meta(), epoch=1))
    before = path.read_bytes()
    broken = build_checkpoint(Tiny(), {}, _meta(), epoch=2)
    broken['extra'] = {'unpicklable': lambda: None}
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, broken)
    assert path.read_bytes() == before
    assert load_checkpoint(path)['epoch'] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']  # no temp left over


def test_rng_round_trip():
    """Rng round trip."""
    state = capture_rng()
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    restore_rng(state)
    second = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    assert first == second


def test_resume_continues_exactly(tmp_path):
    """Resume continues exactly."""
    cfg = OptimConfig(lr=1e-2, warmup_epochs=1.0)

    def fresh():
        """Fresh."""
        torch.manual_seed(0)
        model = Tiny()
        optimizer = build_optimizer(model, cfg)
        scheduler = build_scheduler(optimizer, cfg, iters_per_epoch=2, epochs=3)
        scaler = torch.amp.GradScaler('cpu', enabled=False)
        return model, optimizer, scheduler, scaler

    # uninterrupted: 4 steps
    ref = fresh()
    for seed in range(4):
        _step(*ref, seed)

    # interrupted after 2 steps, saved, restored into new objects, 2 more steps
    run = fresh()
    for seed in range(2):
        _step(*run, seed)
    path = save_checkpoint(tmp_path / 'last.pth', build_checkpoint(
        run[0], {}, _meta(), optimizer=run[1], scheduler=run[2], scaler=run[3], epoch=1))
    state = load_checkpoint(path, require=('model', 'optimizer', 'scheduler', 'scaler', 'rng'))
    model, optimizer, scheduler, scaler = resumed = fresh()
    model.load_state_dict(state['model'])
    optimizer.load_state_dict(state['optimizer'])
    scheduler.load_state_dict(state['scheduler'])
    scaler.load_state_dict(state['scaler'])
    restore_rng(state)
    assert scheduler.get_last_lr() == run[2].get_last_lr()
    for seed in range(2, 4):
        _step(*resumed, seed)
    for key, value in ref[0].state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    assert scheduler.get_last_lr() == ref[2].get_last_lr()
