"""NMF "Hamburger" matrix decomposition used by SegNeXt's LightHamHead.

Determinism: the released code draws fresh random NMF bases at every forward (and hard-codes
``.cuda()``), so its eval output changes from run to run. Here the bases for eval are drawn
once at construction and kept as a persistent buffer (saved in checkpoints), so eval output
is a deterministic function of the state dict on any device. In training mode fresh random
bases are drawn per forward from the global RNG, as in the released code.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class NMF2D(nn.Module):
    """Non-negative matrix factorisation of a (B, C, H, W) map with rank ``rank``.

    X (D=C, N=HW) ~ bases (D, R) @ coef^T (R, N), solved by multiplicative updates; gradients
    flow through all update steps, as in the released code (its no_grad is commented out).
    """

    def __init__(self, channels: int, rank: int = 64, train_steps: int = 6,
                 eval_steps: int = 7, inv_t: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.rank = rank
        self.train_steps = train_steps
        self.eval_steps = eval_steps
        self.inv_t = inv_t
        self.eps = eps
        self.register_buffer('bases', self._random_bases(1, channels, rank))

    @staticmethod
    def _random_bases(batch: int, channels: int, rank: int, device=None) -> torch.Tensor:
        return F.normalize(torch.rand(batch, channels, rank, device=device), dim=1)

    def _update_coef(self, xt: torch.Tensor, bases: torch.Tensor,
                     coef: torch.Tensor) -> torch.Tensor:
        numerator = torch.bmm(xt, bases)  # (B, N, R)
        denominator = torch.bmm(coef, torch.bmm(bases.transpose(1, 2), bases))  # (B, N, R)
        return coef * numerator / (denominator + self.eps)

    def _update_bases(self, xt: torch.Tensor, bases: torch.Tensor,
                      coef: torch.Tensor) -> torch.Tensor:
        numerator = torch.bmm(xt.transpose(1, 2), coef)  # (B, D, R)
        denominator = torch.bmm(bases, torch.bmm(coef.transpose(1, 2), coef))  # (B, D, R)
        return bases * numerator / (denominator + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Low-rank reconstruction of non-negative x, same shape (B, C, H, W)."""
        b, c, h, w = x.shape
        in_dtype = x.dtype
        channels_last = not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        # Multiplicative updates are fragile in half precision: always solve in fp32.
        xt = x.float().flatten(2).transpose(1, 2)  # (B, N, D); a view for channels_last x
        if self.training:
            bases = self._random_bases(b, c, self.rank, device=x.device)
            steps = self.train_steps
        else:
            bases = self.bases.float().expand(b, -1, -1)
            steps = self.eval_steps
        coef = F.softmax(self.inv_t * torch.bmm(xt, bases), dim=-1)  # (B, N, R)
        for _ in range(steps):
            coef = self._update_coef(xt, bases, coef)
            bases = self._update_bases(xt, bases, coef)
        coef = self._update_coef(xt, bases, coef)
        if channels_last:
            out = torch.bmm(coef, bases.transpose(1, 2))  # (B, N, D)
            out = out.unflatten(1, (h, w)).permute(0, 3, 1, 2)  # channels_last view
        else:
            out = torch.bmm(bases, coef.transpose(1, 2)).view(b, c, h, w)  # (B, D, N)
        return out.to(in_dtype)


class Hamburger(nn.Module):
    """ham_in (1x1 conv, ReLU) -> NMF -> ham_out (1x1 conv) -> ReLU(x + .).

    ``ham_out`` has a bias and no norm: the released LightHamHead never passes ``norm_cfg``
    on to its Hamburger.
    """

    def __init__(self, channels: int, rank: int = 64) -> None:
        super().__init__()
        self.ham_in = nn.Conv2d(channels, channels, 1)
        self.ham = NMF2D(channels, rank)
        self.ham_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape preserving (B, C, H, W)."""
        enjoy = self.ham_out(self.ham(F.relu(self.ham_in(x))))
        return F.relu(x + enjoy)
