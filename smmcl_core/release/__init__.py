"""The authors' released SMMCL weights (palmdong/SMMCL ``epoch-N.pth``) as smmcl checkpoints.

- ``layout``: recognise a released file, and the hint loaders print (torch-free).
- ``keymap``: released tensor names and shapes -> this package's network, strictly.
- ``importer``: read a released file and build a self-describing smmcl checkpoint.

This package ``__init__`` imports nothing: ``smmcl_core.checkpoint`` imports ``layout`` and
``importer`` imports ``smmcl_core.checkpoint``, so re-exporting here would be a cycle.
"""
