"""Shared argument groups: one declaration, choices from the tables, one default table."""

import argparse

import pytest

from smmcl_core.cli import check_data, evaluate, tsne
from smmcl_core.cli.args import add_runtime_args, apply_data_args, RUNTIME_DEFAULTS
from smmcl_core.config import ExperimentConfig
from smmcl_core.data.factory import DATASETS
from smmcl_core.engines import BACKENDS, PRECISIONS


def test_runtime_group_takes_choices_from_the_tables():
    parser = argparse.ArgumentParser()
    add_runtime_args(parser)
    args = parser.parse_args([])
    assert vars(args) == RUNTIME_DEFAULTS
    actions = {a.dest: a for a in parser._actions}
    assert tuple(actions['backend'].choices) == BACKENDS
    assert tuple(actions['precision'].choices) == PRECISIONS
    with pytest.raises(SystemExit):
        parser.parse_args(['--backend', 'cuda'])


def test_exact_tools_default_to_the_training_arithmetic():
    args = evaluate.build_parser().parse_args(['--checkpoint', 'x.pth'])
    assert (args.device, args.precision, args.backend) == ('auto', 'fp32', 'torch')
    assert tsne.build_parser().parse_args(['--checkpoint', 'x.pth', '--out', 'o.png']).device \
        == 'auto'


def test_data_flags_patch_the_config_alike():
    cfg = ExperimentConfig()
    cfg.data.dataset, cfg.data.root, cfg.data.aux_modality = 'nyudv2', '/nyu', 'hha'
    args = evaluate.build_parser().parse_args(['--checkpoint', 'x.pth', '--dataset', 'mfnet',
                                               '--split', 'test_night'])
    apply_data_args(args, cfg)
    assert (cfg.data.dataset, cfg.data.root, cfg.data.aux_modality, cfg.data.val_split) == \
        ('mfnet', '', '', 'test_night')
    many = check_data.build_parser().parse_args(['--split', 'train', 'test'])
    assert many.split == ['train', 'test']
    with pytest.raises(SystemExit):
        check_data.build_parser().parse_args(['--dataset', 'nope'])
    assert 'folder' in DATASETS
