"""The keys every checkpoint ``meta`` holds (torch-free: read by the numpy inference path).

``smmcl_core.checkpoint`` writes and documents them; ``Segmenter`` and the ONNX metadata
reader (``engines.onnx_meta``) check them without importing torch.
"""

META_KEYS = ('preset', 'num_classes', 'class_names', 'palette', 'mean', 'std', 'aux_modality',
             'aux_ranges', 'ignore_index')
