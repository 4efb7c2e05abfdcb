"""Optimizer groups, lr schedule, train_one_epoch and evaluate on tiny real inputs."""

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from smmcl_core.config import LossConfig, OptimConfig
from smmcl_core.losses import SMMCLLoss
from smmcl_core.models import create_model
from smmcl_core.optim import build_optimizer, build_scheduler, lr_factor
from smmcl_core.training.loop import evaluate, train_one_epoch

K = 4


@pytest.fixture(scope='module')
def mscan():
    """A real robot-sized network (MSCAN-T)."""
    torch.manual_seed(0)
    return create_model('smmcl_mscan_t', K)


def test_every_parameter_in_exactly_one_group(mscan):
    """Every parameter in exactly one group."""
    optimizer = build_optimizer(mscan, OptimConfig())
    decay, no_decay = optimizer.param_groups
    assert decay['weight_decay'] == 0.01 and no_decay['weight_decay'] == 0.0
    assert decay['lr'] == 6e-5 and decay['betas'] == (0.9, 0.999)
    grouped = [id(p) for g in optimizer.param_groups for p in g['params']]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in mscan.parameters()}
    no_decay_ids = {id(p) for p in no_decay['params']}
    names = dict(mscan.named_parameters())
    norm_types = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.SyncBatchNorm)
    norm_weights = [m.weight for m in mscan.modules() if isinstance(m, norm_types)]
    assert norm_weights and all(id(p) in no_decay_ids for p in norm_weights)
    assert all(id(p) in no_decay_ids for n, p in names.items() if n.endswith('.bias'))
    assert all(id(p) in no_decay_ids for p in mscan.parameters() if p.ndim <= 1)
    conv_weights = [m.weight for m in mscan.modules() if isinstance(m, nn.Conv2d)]
    assert conv_weights and all(id(p) not in no_decay_ids for p in conv_weights)


def test_schedule_warmup_then_poly():
    """Schedule warmup then poly."""
    cfg = OptimConfig(lr=1.0, warmup_epochs=2, warmup_ratio=1e-6, poly_power=0.9)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = build_scheduler(optimizer, cfg, iters_per_epoch=5, epochs=10)  # 50 iters
    lrs = []
    for _ in range(50):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[5] == pytest.approx((0.5 * (1 - 1e-6) + 1e-6) * (1 - 5 / 50) ** 0.9)
    assert lrs[10] == pytest.approx((1 - 10 / 50) ** 0.9)  # warm-up over, pure poly
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[49] == pytest.approx((1 / 50) ** 0.9)
    assert lr_factor(50, 50, 10) == 0.0
    assert lr_factor(60, 50, 10, min_ratio=0.1) == pytest.approx(0.1)


class LabelInAux(nn.Module):
    """Perfect predictor for evaluate(): the label is smuggled in aux channel 0."""

    def forward(self, rgb, aux):
        """Logits (and embeddings when asked)."""
        return F.one_hot(aux[:, 0].long().clamp(0, K - 1), K).permute(0, 3, 1, 2).float()


def _batches(n, b=2, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        label = torch.randint(0, K, (b, h // 16, w // 16), generator=g)
        label = label.repeat_interleave(16, 1).repeat_interleave(16, 2)  # blocky regions
        label[:, :4, :4] = 255
        rgb = torch.randn(b, 3, h, w, generator=g) * 0.1 + label[:, None].clamp(max=K) * 0.3
        aux = torch.randn(b, 3, h, w, generator=g) * 0.1
        out.append((rgb, aux, label))
    return out


def test_evaluate_perfect_predictor_gives_miou_one():
    """Evaluate perfect predictor gives miou one."""
    batches = _batches(2)
    batches = [(rgb, label[:, None].repeat(1, 3, 1, 1).float(), label)
               for rgb, _, label in batches]
    cm = evaluate(LabelInAux(), batches, 'cpu', K, 255, progress=False)
    assert cm.miou() == 1.0 and cm.pixel_accuracy() == 1.0
    assert int(cm.matrix.sum()) == 2 * 2 * (64 * 64 - 16)  # ignore pixels skipped
    cm = evaluate(LabelInAux(), batches, 'cpu', K, 255, crop=(32, 48), flip=True,
                  scales=(1.0,), progress=False)
    assert cm.miou() == pytest.approx(1.0)


class Recorder:
    """Collects add_scalar calls like a TensorBoard SummaryWriter."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        """Add scalar."""
        self.scalars.append((tag, value, step))


class TinyNet(nn.Module):
    """Small stand-in with the SMMCLNet forward contract (embeddings at 1/32 resolution)."""

    def __init__(self):
        super().__init__()
        self.vis = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.aux = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(16, K, 1)
        self.proj_vis = nn.Conv2d(8, 16, 1)
        self.proj_aux = nn.Conv2d(8, 16, 1)

    def forward(self, rgb, aux, return_embeddings=False):
        """Logits (and embeddings when asked)."""
        fv, fa = self.vis(rgb), self.aux(aux)
        logits = self.head(torch.cat([fv, fa], 1))
        if not return_embeddings:
            return logits
        return (logits, self.proj_vis(F.avg_pool2d(fv, 32)),
                self.proj_aux(F.avg_pool2d(fa, 32)))


def _train_setup(model, lr=1e-2):
    cfg = OptimConfig(lr=lr, warmup_epochs=0)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, iters_per_epoch=3, epochs=20)
    return optimizer, scheduler, nn.CrossEntropyLoss(ignore_index=255)


def test_train_one_epoch_lowers_loss_on_fixed_batch():
    """Train one epoch lowers loss on fixed batch."""
    torch.manual_seed(0)
    model = TinyNet()
    batch = _batches(1, b=2, h=128, w=128)[0]  # 4x4 embedding grid
    loader = [batch] * 3
    loss_cfg = LossConfig(mode='both')
    contrastive = SMMCLLoss(K, max_views=50, max_samples=400, min_pixels=1)
    optimizer, scheduler, criterion = _train_setup(model)
    writer = Recorder()
    first = train_one_epoch(model, criterion, contrastive, loss_cfg, optimizer, scheduler,
                            loader, 'cpu', epoch=0, writer=writer, log_every=1, progress=False)
    for epoch in range(1, 4):
        last = train_one_epoch(model, criterion, contrastive, loss_cfg, optimizer, scheduler,
                               loader, 'cpu', epoch=epoch, max_iters=2, progress=False,
                               grad_clip=1.0)
    assert first['iters'] == 3 and last['iters'] == 2
    assert last['loss'] < first['loss'] and last['ce'] < first['ce']
    assert first['cm'] > 0 and first['vis'] > 0 and first['aux'] > 0
    expected = (first['ce'] + 0.2 * (first['cm'] + first['vis'] + first['aux']))
    assert first['loss'] == pytest.approx(expected, rel=1e-5)
    assert scheduler.last_epoch == 3 + 3 * 2
    tags = {t for t, _, _ in writer.scalars}
    assert {'train/loss', 'train/ce', 'train/cm', 'train/lr'} <= tags
    assert [s for t, _, s in writer.scalars if t == 'train/loss'] == [0, 1, 2]


def test_train_step_with_real_model():
    """Train step with real model."""
    model = create_model('smmcl_mit_b0', K)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer, scheduler, criterion = _train_setup(model, lr=1e-4)
    out = train_one_epoch(model, criterion, SMMCLLoss(K, min_pixels=1), LossConfig(),
                          optimizer, scheduler, _batches(1, b=2, h=64, w=64), 'cpu', 0,
                          progress=False)
    assert out['iters'] == 1 and out['ce'] > 0 and out['cm'] > 0
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > 0.9 * len(before)  # projectors included: embeddings were used


class CallLog(nn.Module):
    """Records how the engine calls the model; outputs a learnable constant."""

    def __init__(self, value=0.0):
        super().__init__()
        self.bias = nn.Parameter(torch.full((K,), value))
        self.kwargs = []

    def forward(self, rgb, aux, **kwargs):
        """Logits (and embeddings when asked)."""
        self.kwargs.append(kwargs)
        logits = self.bias.view(1, K, 1, 1).expand(rgb.shape[0], K, *rgb.shape[-2:]) * 1.0
        if kwargs.get('return_embeddings'):
            emb = torch.randn(rgb.shape[0], 8, 2, 2) + self.bias.sum() * 0
            return logits, emb, emb
        return logits


def test_embeddings_requested_only_with_contrastive_loss():
    """Embeddings requested only with contrastive loss."""
    loader = _batches(1, h=32, w=32)
    for contrastive, mode, expected in [(None, 'both', {}), (SMMCLLoss(K), 'none', {}),
                                        (SMMCLLoss(K, min_pixels=1), 'both',
                                         {'return_embeddings': True})]:
        model = CallLog()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        out = train_one_epoch(model, nn.CrossEntropyLoss(ignore_index=255), contrastive,
                              LossConfig(mode=mode), optimizer, None, loader, 'cpu', 0,
                              progress=False)
        assert model.kwargs == [expected]
        if not expected:
            assert out['cm'] == 0.0 and out['loss'] == pytest.approx(out['ce'])


def test_non_finite_loss_raises():
    """Non finite loss raises."""
    model = CallLog(float('nan'))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match='epoch 7'):
        train_one_epoch(model, nn.CrossEntropyLoss(ignore_index=255), None, LossConfig(),
                        optimizer, None, _batches(1, h=32, w=32), 'cpu', 7, progress=False)
