"""Per-stage cross-modal interaction (paper Eq. (1)-(2), Fig. 4, Tab. 1) and stage fusion."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpatialCoefficients(nn.Module):
    """Shared spatial coefficient map S from the channel concatenation of both modalities.

    A 3-layer 1x1-conv MLP [2c, 2c] -> [2c, 2c] -> [2c, 1] with GELU and a final sigmoid.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(2 * dim, 2 * dim, 1), nn.GELU(),
            nn.Conv2d(2 * dim, 2 * dim, 1), nn.GELU(),
            nn.Conv2d(2 * dim, 1, 1), nn.Sigmoid())

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        """Map the concatenation (B, 2c, H, W) to S (B, 1, H, W) in (0, 1)."""
        return self.encode(cat)


class ChannelCoefficients(nn.Module):
    """Shared channel coefficient vector c from pooled statistics of the concatenation.

    Global average and max pooling of the (B, 2c, H, W) concatenation give a (B, 4c, 1, 1)
    descriptor, then [4c, 4c] -> [4c, 4c] -> [4c, c] 1x1 convs with GELU and a sigmoid.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(4 * dim, 4 * dim, 1), nn.GELU(),
            nn.Conv2d(4 * dim, 4 * dim, 1), nn.GELU(),
            nn.Conv2d(4 * dim, dim, 1), nn.Sigmoid())

    def forward(self, cat: torch.Tensor) -> torch.Tensor:
        """Map the concatenation (B, 2c, H, W) to c (B, c, 1, 1) in (0, 1)."""
        pooled = torch.cat((cat.mean(dim=(2, 3), keepdim=True),
                            cat.amax(dim=(2, 3), keepdim=True)), dim=1)  # (B, 4c, 1, 1)
        return self.encode(pooled)


class InteractionModule(nn.Module):
    """Exchange information between the two streams with shared coefficients.

    F_vis' = F_vis + s * S * F_aux + w * c * F_aux and F_aux' = F_aux + s * S * F_vis +
    w * c * F_vis, with s = w = 0.5 as in the released code (following CMX).
    """

    def __init__(self, dim: int, spatial_weight: float = 0.5, channel_weight: float = 0.5) -> None:
        super().__init__()
        self.spatial_weight = spatial_weight
        self.channel_weight = channel_weight
        self.spatial = SpatialCoefficients(dim)
        self.channel = ChannelCoefficients(dim)

    def coefficients(self, vis: torch.Tensor, aux: torch.Tensor) -> tuple:
        """Return (S (B,1,H,W), c (B,C,1,1)) for a feature pair (B, C, H, W)."""
        cat = torch.cat((vis, aux), dim=1)  # (B, 2C, H, W)
        return self.spatial(cat), self.channel(cat)

    def forward(self, vis: torch.Tensor, aux: torch.Tensor) -> tuple:
        """Return the updated pair (vis', aux'), both (B, C, H, W)."""
        s, c = self.coefficients(vis, aux)
        # One (B, C, H, W) gate instead of two products per stream: s*S*F + w*c*F = F*(s*S + w*c).
        gate = s * self.spatial_weight + c * self.channel_weight
        return vis + aux * gate, aux + vis * gate


class FusionConv(nn.Module):
    """Per-stage fusion feature for the decoder: 1x1 conv [2c, c] on the concatenated pair."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fusion_conv = nn.Conv2d(2 * dim, dim, 1)

    def forward(self, vis: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """Fuse (B, C, H, W) x 2 -> (B, C, H, W)."""
        # Split the weight instead of concatenating: saves a (B, 2C, H, W) copy at 1/4 scale.
        w_vis, w_aux = self.fusion_conv.weight.chunk(2, dim=1)
        return F.conv2d(vis, w_vis, self.fusion_conv.bias) + F.conv2d(aux, w_aux)
