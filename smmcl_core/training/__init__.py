"""Training: the run (``trainer``), its loops (``loop``), DDP context and run records.

- ``trainer``: :class:`~smmcl_core.training.trainer.Trainer` and ``train(cfg, resume)``.
- ``loop``: ``train_one_epoch`` and ``evaluate`` (plain functions).
- ``distributed``: ``DistContext`` (torchrun environment), process group, sharded eval loader.
- ``records``: ``metrics.jsonl`` reading/writing and one evaluation's headline numbers.

Inference runtimes are ``smmcl_core.engines``; experiment configs are ``smmcl_core.config``.
"""
