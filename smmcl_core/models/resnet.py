"""timm ResNet split into four NCHW stages (stem + layer1, layer2, layer3, layer4)."""

from collections import OrderedDict

import timm
import torch.nn as nn

from smmcl_core.models.encoder import StagedEncoder

RESNET_ARCHS = ('resnet18', 'resnet34', 'resnet50', 'resnet101')


def build_timm_resnet(arch: str, pretrained: bool = False,
                      drop_path_rate: float = 0.0) -> nn.Module:
    """Create the timm classification ResNet (optionally with hub weights)."""
    if arch not in RESNET_ARCHS:
        raise KeyError(f'unknown ResNet arch {arch!r}; valid: {list(RESNET_ARCHS)}')
    return timm.create_model(arch, pretrained=pretrained, drop_path_rate=drop_path_rate)


class ResNetEncoder(StagedEncoder):
    """One ResNet stream run stage by stage.

    Stage 0 holds ``conv1, bn1, act1, maxpool, layer1``, stage k holds ``layer{k+1}``, so a
    timm key ``layer2.0.conv1.weight`` lives at ``stages.1.layer2.0.conv1.weight``.

    Attributes:
        channels: output channels of the four stages.
        strides: output strides of the four stages.
        stages: the four NCHW stages.
    """

    def __init__(self, arch: str = 'resnet50', drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.arch = arch
        net = build_timm_resnet(arch, drop_path_rate=drop_path_rate)
        self.stages = nn.ModuleList([
            nn.Sequential(OrderedDict(conv1=net.conv1, bn1=net.bn1, act1=net.act1,
                                      maxpool=net.maxpool, layer1=net.layer1)),
            nn.Sequential(OrderedDict(layer2=net.layer2)),
            nn.Sequential(OrderedDict(layer3=net.layer3)),
            nn.Sequential(OrderedDict(layer4=net.layer4)),
        ])
        self.channels = tuple(info['num_chs'] for info in net.feature_info[1:])
        self.strides = tuple(info['reduction'] for info in net.feature_info[1:])
