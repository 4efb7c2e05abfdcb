"""The checkpoint as the node parameters configure it: engine, modality, classes, outputs."""

from typing import Any, Optional, Tuple

from smmcl_ros.messages.image_codec import AUX_ENCODINGS
from smmcl_ros.node.params import NodeParams, ParameterError
from smmcl_ros.node.published import CLOUD_MODALITIES
from smmcl_ros.pipeline.points import points_config, PointsConfig


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


def resolve_registration(params: NodeParams, modality: str) -> Any:
    """The pipeline's aux registration step for ``aux_registration`` and its parameters."""
    # Imported here: the registration math loads OpenCV, which parameter errors need not pay.
    from smmcl_ros.pipeline.registration import make_registration

    return make_registration(params, modality)


def resolve_points(params: NodeParams, modality: str,
                   class_names: Tuple[str, ...]) -> Optional[PointsConfig]:
    """What ``segmentation/points`` keeps, or None when no cloud is published.

    Raises:
        ParameterError: A ``points_*`` parameter is invalid (e.g. an unknown class name).
    """
    if not params.publish_points or modality not in CLOUD_MODALITIES:
        return None
    try:
        return points_config(params.points_stride, params.points_max_range,
                             params.points_classes, class_names)
    except ValueError as err:
        raise ParameterError(str(err)) from err
