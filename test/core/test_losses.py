"""SMMCL contrastive loss (§3.2): sampling rules and Eq. (3)-(6) against a loop reference."""

import math
from typing import List, Optional, Tuple

import pytest
import torch
import torch.nn.functional as F

from smmcl_core.losses import downscale_labels, SMMCLLoss

IGN = 255


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _upscale(small: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """(B, h, w) -> (B, h*f, w*f) with constant blocks, so nearest downscaling is exact."""
    return small.repeat_interleave(factor, 1).repeat_interleave(factor, 2)


def _ref_term(anchors: List[torch.Tensor], contrast: List[torch.Tensor], labels: List[int],
              tau: float) -> float:
    """Eq. (3)/(5) with loops: P_i/N_i over j != i; anchors without positives are skipped."""
    a = [x.double() / x.double().norm() for x in anchors]
    c = [x.double() / x.double().norm() for x in contrast]
    per_anchor = []
    for i in range(len(a)):
        pos = [j for j in range(len(c)) if j != i and labels[j] == labels[i]]
        neg = [j for j in range(len(c)) if j != i and labels[j] != labels[i]]
        if not pos:
            continue
        neg_sum = sum(math.exp(float(a[i] @ c[k]) / tau) for k in neg)
        nce = []
        for j in pos:
            e_pos = math.exp(float(a[i] @ c[j]) / tau)
            nce.append(-math.log(e_pos / (e_pos + neg_sum)))
        per_anchor.append(sum(nce) / len(nce))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


def _ref_loss(emb_vis: torch.Tensor, emb_aux: torch.Tensor,
              positions: List[Tuple[int, int, int, int]], tau: float) -> dict:
    """positions: (b, y, x, class) of the sampled embeddings, shared by both modalities."""
    vis = [emb_vis[b, :, y, x] for b, y, x, _ in positions]
    aux = [emb_aux[b, :, y, x] for b, y, x, _ in positions]
    labels = [k for *_, k in positions]
    return {'cm': _ref_term(vis, aux, labels, tau), 'vis': _ref_term(vis, vis, labels, tau),
            'aux': _ref_term(aux, aux, labels, tau)}


def _qualifying_positions(small: torch.Tensor, min_pixels: int = 5
                          ) -> List[Tuple[int, int, int, int]]:
    out = []
    for b in range(small.shape[0]):
        for k in set(small[b].flatten().tolist()) - {IGN}:
            ys, xs = torch.nonzero(small[b] == k, as_tuple=True)
            if len(ys) >= min_pixels:
                out += [(b, int(y), int(x), k) for y, x in zip(ys, xs)]
    return out


def _equal_count_labels() -> torch.Tensor:
    """(2, 4, 5) grid: every qualifying (image, class) pair has exactly 5 pixels."""
    img0 = [0] * 5 + [1] * 5 + [2] * 5 + [IGN] * 3 + [3] * 2  # class 3: 2 pixels, skipped
    img1 = [1] * 5 + [2] * 5 + [4] * 5 + [0] * 4 + [IGN]  # class 0: 4 pixels, skipped
    small = torch.tensor([img0, img1]).reshape(2, 4, 5)
    perm = torch.randperm(20, generator=_gen(3))  # scatter the classes over the grid
    return small.reshape(2, 20)[:, perm].reshape(2, 4, 5)


def _sample_positions(loss: SMMCLLoss, labels: torch.Tensor, grid: Tuple[int, int],
                      seed: Optional[int] = None) -> List[Tuple[int, int, int, int]]:
    s = loss.sample(labels, grid, None if seed is None else _gen(seed))
    w = grid[1]
    return [(int(b), int(p) // w, int(p) % w, int(k))
            for b, p, k in zip(s.batch_idx, s.pos_idx, s.cls)]


@pytest.mark.parametrize('tau', [0.1, 0.5])
def test_matches_loop_reference_when_every_pixel_is_taken(tau):
    """With V equal to every count, all three terms equal the loop reference."""
    small = _equal_count_labels()
    labels = _upscale(small)  # (2, 16, 20)
    emb_vis = torch.randn(2, 8, 4, 5, generator=_gen(0))
    emb_aux = torch.randn(2, 8, 4, 5, generator=_gen(1))
    loss = SMMCLLoss(num_classes=5, temperature=tau)

    expected_positions = _qualifying_positions(small)
    sampled = _sample_positions(loss, labels, (4, 5), seed=0)
    assert sorted(sampled) == sorted(expected_positions)  # V = 5 = every count

    out = loss(emb_vis, emb_aux, labels, generator=_gen(7))
    ref = _ref_loss(emb_vis, emb_aux, expected_positions, tau)
    for key in ('cm', 'vis', 'aux'):
        assert out[key].dtype == torch.float32
        assert out[key].item() == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key


def test_not_supcon_denominator():
    """Other positives must not appear in the denominator (Eq. 4), unlike SupCon."""
    small = _equal_count_labels()
    emb = torch.randn(2, 8, 4, 5, generator=_gen(2))
    positions = _qualifying_positions(small)
    out = SMMCLLoss(5)(emb, emb, _upscale(small))
    vecs = F.normalize(torch.stack([emb[b, :, y, x] for b, y, x, _ in positions]).double(), dim=1)
    labels = torch.tensor([k for *_, k in positions])
    logits = vecs @ vecs.t() / 0.1
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    log_prob = logits - torch.logsumexp(logits.masked_fill(eye, -math.inf), 1, keepdim=True)
    supcon = (-(log_prob * pos).sum(1) / pos.sum(1)).mean().item()
    assert out['vis'].item() < supcon - 1e-3  # fewer terms in the denominator
    assert out['vis'].item() == pytest.approx(_ref_loss(emb, emb, positions, 0.1)['vis'],
                                              rel=1e-5)


def test_anchors_without_positive_are_excluded():
    """With one view per pair, classes seen in one image only have no positive."""
    small = _equal_count_labels()  # classes 1 and 2 in both images; 0 and 4 in one
    labels = _upscale(small)
    emb_vis = torch.randn(2, 8, 4, 5, generator=_gen(4))
    emb_aux = torch.randn(2, 8, 4, 5, generator=_gen(5))
    loss = SMMCLLoss(num_classes=5, max_views=1)
    positions = _sample_positions(loss, labels, (4, 5), seed=11)
    assert len(positions) == 6
    out = loss(emb_vis, emb_aux, labels, generator=_gen(11))  # same seed -> same positions
    ref = _ref_loss(emb_vis, emb_aux, positions, 0.1)
    for key in ('cm', 'vis', 'aux'):
        assert out[key].item() == pytest.approx(ref[key], rel=1e-5), key


def test_sampled_positions_respect_labels_and_ignore():
    """Samples sit on pixels of their class, never on ignore, without replacement."""
    labels = torch.randint(0, 6, (3, 12, 16), generator=_gen(0))
    labels[:, :, :8] = IGN
    labels[1] = IGN
    loss = SMMCLLoss(num_classes=6)
    small = downscale_labels(labels, (12, 16))
    s = loss.sample(labels, generator=_gen(1))
    assert s.cls.numel() > 0
    at = small.reshape(3, -1)[s.batch_idx, s.pos_idx]
    assert (at != IGN).all()
    assert torch.equal(at, s.cls)
    assert not (s.batch_idx == 1).any()
    keys = s.batch_idx * 1000 + s.pos_idx
    assert torch.unique(keys).numel() == keys.numel()  # without replacement


def test_downscale_is_nearest():
    """Labels reach the embedding grid by nearest interpolation."""
    labels = torch.ones(1, 8, 10, dtype=torch.long)
    labels[:, 1::2] = 2  # nearest with factor 2 reads rows/cols 0, 2, 4, ...
    labels[:, :, 1::2] = 3
    assert torch.equal(downscale_labels(labels, (4, 5)), torch.ones(1, 4, 5, dtype=torch.long))
    assert downscale_labels(labels.to(torch.uint8), (8, 10)).dtype == torch.long


def _counts_labels(counts_per_image: List[List[int]], grid: Tuple[int, int]) -> torch.Tensor:
    rows = []
    npix = grid[0] * grid[1]
    for counts in counts_per_image:
        row = sum(([k] * n for k, n in enumerate(counts)), [])
        rows.append(row + [IGN] * (npix - len(row)))
    return torch.tensor(rows).reshape(len(rows), *grid)


def _pair_counts(s) -> dict:
    pairs, counts = torch.unique(torch.stack([s.batch_idx, s.cls]), dim=1, return_counts=True)
    return {(int(b), int(k)): int(n) for (b, k), n in zip(pairs.t(), counts)}


def test_small_classes_skipped_and_views_is_min_count():
    """Pairs under min_pixels are skipped; V is the smallest remaining count."""
    labels = _counts_labels([[7, 4, 30, 0], [12, 0, 5, 9]], (6, 10))
    s = SMMCLLoss(num_classes=4).sample(labels, generator=_gen(0))
    # class 1 in image 0 has 4 < 5 pixels; the smallest qualifying count is 5
    assert _pair_counts(s) == {(0, 0): 5, (0, 2): 5, (1, 0): 5, (1, 2): 5, (1, 3): 5}
    s = SMMCLLoss(num_classes=4, min_pixels=3).sample(labels, generator=_gen(0))
    assert set(_pair_counts(s).values()) == {4}


def test_views_capped_at_max_views_and_total():
    """V is capped at max_views and so that all pairs hold at most max_samples."""
    labels = _counts_labels([[800, 800]], (40, 40))
    s = SMMCLLoss(num_classes=2).sample(labels, generator=_gen(0))
    assert _pair_counts(s) == {(0, 0): 300, (0, 1): 300}

    labels = labels.expand(16, 40, 40)  # 32 pairs * 300 > 4800
    s = SMMCLLoss(num_classes=2).sample(labels, generator=_gen(0))
    assert set(_pair_counts(s).values()) == {150}
    assert s.cls.numel() == 4800

    s = SMMCLLoss(num_classes=2, max_samples=10).sample(labels[:2], generator=_gen(0))
    assert set(_pair_counts(s).values()) == {2}  # 4 pairs, 10 // 4


def test_sampling_randomness_is_controllable():
    """A generator or the global seed makes sampling reproducible."""
    labels = _counts_labels([[40, 50, 60]], (16, 16))
    loss = SMMCLLoss(num_classes=3)
    a = loss.sample(labels, generator=_gen(5))
    b = loss.sample(labels, generator=_gen(5))
    c = loss.sample(labels, generator=_gen(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.pos_idx, c.pos_idx)
    torch.manual_seed(123)
    d = loss.sample(labels)
    torch.manual_seed(123)
    e = loss.sample(labels)
    assert torch.equal(d.pos_idx, e.pos_idx)


def test_same_positions_for_both_modalities():
    """Only sampled positions get gradient, and they are the same in both embeddings."""
    labels = _upscale(_counts_labels([[30, 20, 10], [12, 25, 0]], (8, 8)))
    emb_vis = torch.randn(2, 16, 8, 8, requires_grad=True)
    emb_aux = torch.randn(2, 16, 8, 8, requires_grad=True)
    loss = SMMCLLoss(num_classes=3, mode='cross')
    s = loss.sample(labels, (8, 8), generator=_gen(9))
    loss(emb_vis, emb_aux, labels, generator=_gen(9))['cm'].backward()
    touched_vis = emb_vis.grad.abs().sum(1).reshape(2, -1) > 0
    touched_aux = emb_aux.grad.abs().sum(1).reshape(2, -1) > 0
    sampled = torch.zeros(2, 64, dtype=torch.bool)
    sampled[s.batch_idx, s.pos_idx] = True
    assert sampled.sum() == 5 * 10  # V = 10 of the available 97 pixels
    assert torch.equal(touched_vis, sampled)
    assert torch.equal(touched_aux, sampled)


@pytest.mark.parametrize('small', [torch.full((2, 4, 4), IGN),
                                   _counts_labels([[4, 3], [2, 0]], (4, 4))])
def test_no_qualifying_pair_gives_attached_zeros(small):
    """Nothing to sample: zero terms that still backpropagate (DDP-safe)."""
    emb_vis = torch.randn(2, 8, 4, 4, requires_grad=True)
    emb_aux = torch.randn(2, 8, 4, 4, requires_grad=True)
    out = SMMCLLoss(num_classes=2)(emb_vis, emb_aux, _upscale(small))
    assert all(v.item() == 0.0 and v.requires_grad for v in out.values())
    sum(out.values()).backward()
    assert torch.equal(emb_vis.grad, torch.zeros_like(emb_vis))
    assert torch.equal(emb_aux.grad, torch.zeros_like(emb_aux))


def test_gradients_reach_both_embeddings():
    """Every mode sends finite, non-zero gradients to both embeddings."""
    labels = torch.randint(0, 4, (2, 32, 32), generator=_gen(0))
    emb_vis = torch.randn(2, 16, 8, 8, requires_grad=True)
    emb_aux = torch.randn(2, 16, 8, 8, requires_grad=True)
    for mode in ('cross', 'intra', 'both'):
        emb_vis.grad = emb_aux.grad = None
        out = SMMCLLoss(num_classes=4, mode=mode)(emb_vis, emb_aux, labels)
        sum(out.values()).backward()
        assert emb_vis.grad.abs().sum() > 0 and emb_aux.grad.abs().sum() > 0, mode
        assert torch.isfinite(emb_vis.grad).all() and torch.isfinite(emb_aux.grad).all()


@pytest.mark.parametrize('scale,tau', [(1e30, 1e-4), (1e-30, 1e-4), (0.0, 0.1), (1.0, 1e-6)])
def test_numerically_stable(scale, tau):
    """Huge, tiny or zero embeddings and tiny temperatures stay finite."""
    labels = torch.randint(0, 3, (2, 16, 16), generator=_gen(1))
    base = torch.randn(2, 8, 4, 4, generator=_gen(2)) * scale
    emb_vis = base.clone().requires_grad_()
    emb_aux = (-base).requires_grad_()
    out = SMMCLLoss(num_classes=3, temperature=tau)(emb_vis, emb_aux, labels, _gen(5))
    assert all(torch.isfinite(v) for v in out.values())
    sum(out.values()).backward()
    assert torch.isfinite(emb_vis.grad).all() and torch.isfinite(emb_aux.grad).all()
    if scale == 1e30:  # scale-invariant after normalisation
        ref = SMMCLLoss(num_classes=3, temperature=tau)(base / scale, -base / scale, labels,
                                                        _gen(5))
        assert out['vis'].item() == pytest.approx(ref['vis'].item(), rel=1e-4)


def test_mode_switches():
    """Table 5 ablation modes enable exactly their terms."""
    labels = torch.randint(0, 4, (2, 32, 32), generator=_gen(0))
    emb_vis = torch.randn(2, 16, 8, 8, generator=_gen(1))
    emb_aux = torch.randn(2, 16, 8, 8, generator=_gen(2))
    outs = {m: SMMCLLoss(num_classes=4, mode=m)(emb_vis, emb_aux, labels, generator=_gen(3))
            for m in ('none', 'cross', 'intra', 'both')}
    assert all(v.item() == 0 for v in outs['none'].values())
    assert outs['cross']['cm'] > 0 and outs['cross']['vis'] == 0 and outs['cross']['aux'] == 0
    assert outs['intra']['cm'] == 0 and outs['intra']['vis'] > 0 and outs['intra']['aux'] > 0
    assert outs['both']['cm'] == outs['cross']['cm']
    assert outs['both']['vis'] == outs['intra']['vis']
    assert outs['both']['aux'] == outs['intra']['aux']
    with pytest.raises(ValueError, match='mode'):
        SMMCLLoss(num_classes=4, mode='all')


def test_bfloat16_autocast_on_cpu():
    """Under bf16 autocast the loss is float32 and close to the fp32 value."""
    labels = torch.randint(0, 4, (2, 32, 32), generator=_gen(0))
    conv = torch.nn.Conv2d(8, 16, 1)
    x_vis = torch.randn(2, 8, 8, 8, generator=_gen(1))
    x_aux = torch.randn(2, 8, 8, 8, generator=_gen(2))
    loss = SMMCLLoss(num_classes=4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        emb_vis, emb_aux = conv(x_vis), conv(x_aux)
        assert emb_vis.dtype == torch.bfloat16
        out = loss(emb_vis, emb_aux, labels, generator=_gen(3))
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in out.values())
    sum(out.values()).backward()
    assert torch.isfinite(conv.weight.grad).all() and conv.weight.grad.abs().sum() > 0
    ref = loss(conv(x_vis), conv(x_aux), labels, generator=_gen(3))
    for key in out:
        assert out[key].item() == pytest.approx(ref[key].item(), rel=0.05), key


def test_separated_embeddings_score_lower_than_random():
    """Class-separated embeddings give a much lower loss than random ones."""
    labels = torch.randint(0, 4, (2, 32, 32), generator=_gen(0))
    small = downscale_labels(labels, (8, 8))
    directions = torch.eye(16)[:4]  # one orthogonal direction per class
    separated = directions[small].permute(0, 3, 1, 2)  # (2, 16, 8, 8)
    separated = separated + 0.01 * torch.randn(2, 16, 8, 8, generator=_gen(1))
    random = torch.randn(2, 16, 8, 8, generator=_gen(2))
    loss = SMMCLLoss(num_classes=4)
    good = loss(separated, separated.clone(), labels, generator=_gen(3))
    bad = loss(random, torch.randn(2, 16, 8, 8, generator=_gen(4)), labels, generator=_gen(3))
    for key in ('cm', 'vis', 'aux'):
        assert good[key] < 0.1 < 1.0 < bad[key], key


def test_bad_inputs_raise_clear_errors():
    """Bad labels, shapes and settings raise errors naming the culprit."""
    loss = SMMCLLoss(num_classes=3)
    emb = torch.randn(1, 4, 2, 2)
    with pytest.raises(ValueError, match=r'\[7\]'):
        loss(emb, emb, torch.full((1, 8, 8), 7))
    with pytest.raises(ValueError, match='emb_aux'):
        loss(emb, torch.randn(1, 4, 2, 3), torch.zeros(1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match='labels'):
        loss(emb, emb, torch.zeros(8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match='integer'):
        loss(emb, emb, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match='temperature'):
        SMMCLLoss(num_classes=3, temperature=0)
