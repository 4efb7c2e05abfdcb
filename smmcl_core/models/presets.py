"""Model presets and ``create_model``."""

import copy
import functools

import torch
import torch.nn as nn

from smmcl_core.models.heads import LightHamHead, MLPHead
from smmcl_core.models.init import init_head
from smmcl_core.models.mit import MiT
from smmcl_core.models.mscan import MSCAN
from smmcl_core.models.network import DualEncoder, SMMCLNet
from smmcl_core.models.resnet import ResNetEncoder

# Decoder sizes for MSCAN follow SegNeXt (T/S: 256 channels, NMF rank 16; B: 512, rank 64,
# as the released config; L: 1024). MiT and ResNet use the all-MLP head with embed 512
# (released decoder_embed_dim).
PRESETS = {
    # paper models
    'smmcl_mscan_b': dict(encoder='mscan', variant='b', decoder='ham', decoder_channels=512,
                          ham_rank=64, drop_path_rate=0.2),
    'smmcl_mit_b2': dict(encoder='mit', variant='b2', decoder='mlp', decoder_channels=512,
                         drop_path_rate=0.1),
    'smmcl_resnet101': dict(encoder='resnet', variant='resnet101', decoder='mlp',
                            decoder_channels=512, drop_path_rate=0.0),
    # robot-sized
    'smmcl_mscan_t': dict(encoder='mscan', variant='t', decoder='ham', decoder_channels=256,
                          ham_rank=16, drop_path_rate=0.1),
    'smmcl_mit_b0': dict(encoder='mit', variant='b0', decoder='mlp', decoder_channels=256,
                         drop_path_rate=0.1),
    'smmcl_resnet18': dict(encoder='resnet', variant='resnet18', decoder='mlp',
                           decoder_channels=256, drop_path_rate=0.0),
    # other sizes
    'smmcl_mscan_s': dict(encoder='mscan', variant='s', decoder='ham', decoder_channels=256,
                          ham_rank=16, drop_path_rate=0.1),
    'smmcl_mscan_l': dict(encoder='mscan', variant='l', decoder='ham', decoder_channels=1024,
                          ham_rank=64, drop_path_rate=0.3),
    # the released code's MSCAN-L: its LightHamHead keeps decoder_embed_dim 512
    'smmcl_mscan_l_release': dict(encoder='mscan', variant='l', decoder='ham',
                                  decoder_channels=512, ham_rank=64, drop_path_rate=0.3),
    'smmcl_mit_b1': dict(encoder='mit', variant='b1', decoder='mlp', decoder_channels=512,
                         drop_path_rate=0.1),
    'smmcl_mit_b3': dict(encoder='mit', variant='b3', decoder='mlp', decoder_channels=512,
                         drop_path_rate=0.1),
    'smmcl_mit_b4': dict(encoder='mit', variant='b4', decoder='mlp', decoder_channels=512,
                         drop_path_rate=0.1),
    'smmcl_mit_b5': dict(encoder='mit', variant='b5', decoder='mlp', decoder_channels=512,
                         drop_path_rate=0.1),
    'smmcl_resnet50': dict(encoder='resnet', variant='resnet50', decoder='mlp',
                           decoder_channels=512, drop_path_rate=0.0),
}

# Keys every preset may override, with their defaults when a preset does not set them.
_DEFAULTS = dict(encoder=None, variant=None, decoder=None, decoder_channels=512, ham_rank=64,
                 drop_path_rate=0.0, drop_rate=0.0, decoder_dropout=0.1, embed_dim=256,
                 pretrained=None, channels_last=True)


def preset_config(name: str, **overrides) -> dict:
    """The full configuration of a preset with ``overrides`` applied.

    Raises:
        KeyError: unknown preset name (the message lists the valid names).
        TypeError: an override that is not a model option.
    """
    if name not in PRESETS:
        raise KeyError(f'unknown model preset {name!r}; valid presets: {sorted(PRESETS)}')
    unknown = sorted(set(overrides) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f'unknown model option(s) {unknown}; valid: {sorted(_DEFAULTS)}')
    cfg = dict(_DEFAULTS)
    cfg.update(copy.deepcopy(PRESETS[name]))
    cfg.update(overrides)
    return cfg


def _stream_builder(cfg: dict):
    kind = cfg['encoder']
    if kind == 'mscan':
        return functools.partial(MSCAN, cfg['variant'], drop_path_rate=cfg['drop_path_rate'],
                                 drop_rate=cfg['drop_rate'])
    if kind == 'mit':
        return functools.partial(MiT, cfg['variant'], drop_path_rate=cfg['drop_path_rate'],
                                 drop_rate=cfg['drop_rate'])
    if kind == 'resnet':
        return functools.partial(ResNetEncoder, cfg['variant'],
                                 drop_path_rate=cfg['drop_path_rate'])
    raise KeyError(f'unknown encoder {kind!r}; valid: mscan, mit, resnet')


def _build_decoder(cfg: dict, channels: tuple, num_classes: int) -> nn.Module:
    if cfg['decoder'] == 'ham':
        return LightHamHead(channels, num_classes, channels=cfg['decoder_channels'],
                            ham_channels=cfg['decoder_channels'], rank=cfg['ham_rank'],
                            dropout=cfg['decoder_dropout'])
    if cfg['decoder'] == 'mlp':
        return MLPHead(channels, num_classes, embed_dim=cfg['decoder_channels'],
                       dropout=cfg['decoder_dropout'])
    raise KeyError(f"unknown decoder {cfg['decoder']!r}; valid: ham, mlp")


def create_model(name: str, num_classes: int, **overrides) -> SMMCLNet:
    """Build an :class:`SMMCLNet` from a preset.

    Args:
        name: a key of :data:`PRESETS`.
        num_classes: number of output classes.
        **overrides: preset options to change, e.g. ``drop_path_rate=0.0``,
            ``pretrained='/path/mscan_b.pth'`` (ImageNet weights into both streams; for ResNet
            ``'timm'`` downloads timm's weights), ``decoder='mlp'``, ``decoder_channels=256``,
            ``channels_last=False``.

    With ``channels_last`` (default) the weights are stored channels_last; convolutions then
    run channels_last even for NCHW inputs, which is ~1.7x faster on CPU (MKL-DNN depthwise
    convs are slow in NCHW). The state dict is the same either way.
    """
    if int(num_classes) < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}')
    cfg = preset_config(name, **overrides)
    encoder = DualEncoder(_stream_builder(cfg))
    decoder = _build_decoder(cfg, encoder.channels, int(num_classes))
    init_head(decoder)
    model = SMMCLNet(encoder, decoder, int(num_classes), embed_dim=cfg['embed_dim'], preset=name)
    if cfg['pretrained']:
        from smmcl_core.models.pretrained import load_pretrained
        load_pretrained(model, cfg['pretrained'])
    if cfg['channels_last']:
        model = model.to(memory_format=torch.channels_last)
    return model
