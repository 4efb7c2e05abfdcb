"""The checkpoint as the node parameters configure it: engine, aux modality, class names."""

from typing import Any, Tuple

from smmcl_ros.messages.image_codec import AUX_ENCODINGS
from smmcl_ros.node.params import NodeParams, ParameterError


def load_segmenter(params: NodeParams) -> Any:
    """``Segmenter.from_checkpoint`` with the node's device / precision / backend."""
    # Imported here so that parameter errors do not pay for torch.
    from smmcl_core.segmenter import Segmenter

    return Segmenter.from_checkpoint(params.checkpoint, device=params.device,
                                     precision=params.precision, backend=params.backend)


def resolve_modality(params: NodeParams, segmenter: Any) -> str:
    """The aux modality: the checkpoint's, which ``aux_modality`` may only confirm.

    Raises:
        ParameterError: Unsupported modality, or one the checkpoint was not trained on.
    """
    checkpoint_modality = str(segmenter.aux_modality)
    wanted = params.aux_modality or checkpoint_modality
    if wanted not in AUX_ENCODINGS:
        raise ParameterError(
            f'aux modality {wanted!r} (checkpoint {params.checkpoint}) is not supported '
            f'by the node; valid: {list(AUX_ENCODINGS)}')
    if params.aux_modality and wanted != checkpoint_modality:
        raise ParameterError(
            f"parameter 'aux_modality' = {wanted!r} but checkpoint {params.checkpoint} "
            f'was trained on {checkpoint_modality!r}')
    return wanted


def resolve_class_names(params: NodeParams, segmenter: Any) -> Tuple[str, ...]:
    """The checkpoint's class names, or ``class_names`` when it has as many.

    Raises:
        ParameterError: ``class_names`` has another length.
    """
    names = tuple(segmenter.class_names)
    if params.class_names:
        if len(params.class_names) != len(names):
            raise ParameterError(
                f"parameter 'class_names' has {len(params.class_names)} names but "
                f'checkpoint {params.checkpoint} has {len(names)} classes')
        names = tuple(params.class_names)
    return names
