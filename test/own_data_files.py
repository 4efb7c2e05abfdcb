"""A dataset folder shaped like a real thermal-camera + labelme export (issue 19).

Built from the real MSRS night pairs in ``shared/data/msrs_night``: 400x400 square frames
(centre crop of the 640x480 pairs), the RGB frame and a pseudo-colour thermal frame saved as
JPEG, the thermal rendered through a camera palette that is in no table of
``smmcl_core.data.thermal`` (:data:`CAMERA_ANCHORS`), and RGB label PNGs whose class colour
(128, 0, 0) was blended at the edges by resizing (colours (1, 0, 0) ... (127, 0, 0)), with
the binary classes ``_background_`` and ``crack``.
"""

from pathlib import Path
from typing import Dict, List, Optional

from conftest import SHARED_DATA
import cv2
import numpy as np
import pytest
import yaml

MSRS = SHARED_DATA / 'msrs_night'
SIZE = 400
CRACK = (128, 0, 0)

# A camera palette of our own (position in [0, 1], RGB), interpolated linearly: indigo, teal,
# green, salmon, cream. Its brightness rises with temperature; its colours are in no table.
CAMERA_ANCHORS = ((0.0, (40, 10, 120)), (0.25, (0, 95, 125)), (0.5, (100, 165, 60)),
                  (0.75, (245, 175, 165)), (1.0, (255, 250, 225)))


def camera_lut() -> np.ndarray:
    """``uint8 (256, 3)`` RGB colours of :data:`CAMERA_ANCHORS`."""
    positions = np.array([a[0] for a in CAMERA_ANCHORS]) * 255.0
    colours = np.array([a[1] for a in CAMERA_ANCHORS], np.float64)
    grid = np.arange(256, dtype=np.float64)
    lut = np.stack([np.interp(grid, positions, colours[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def msrs_names(count: int) -> List[str]:
    """The first ``count`` MSRS pair names (sorted); skips the test without ../shared."""
    if not MSRS.is_dir():
        pytest.skip(f'real sample data not found at {MSRS}')
    names = sorted(p.stem for p in (MSRS / 'thermal').glob('*.png'))
    assert len(names) >= count, names
    return names[:count]


def square(image: np.ndarray, size: int = SIZE, interpolation: int = cv2.INTER_AREA
           ) -> np.ndarray:
    """Centre square crop of a 480x640 frame, resized to ``size`` x ``size``."""
    h, w = image.shape[:2]
    left = (w - h) // 2
    return cv2.resize(image[:, left:left + h], (size, size), interpolation=interpolation)


def msrs_thermal(name: str, size: int = SIZE) -> np.ndarray:
    """The real thermal frame, square: ``uint8 (size, size)``."""
    raw = cv2.imread(str(MSRS / 'thermal' / f'{name}.png'), cv2.IMREAD_GRAYSCALE)
    return square(raw, size)


def blended_label(name: str, size: int = SIZE) -> np.ndarray:
    """RGB label: hot regions as (128, 0, 0), drawn at 480x480, resized bilinearly to ``size``.

    Returns:
        ``uint8 (size, size, 3)`` RGB with edge colours (r, 0, 0), 0 < r < 128.
    """
    raw = cv2.imread(str(MSRS / 'thermal' / f'{name}.png'), cv2.IMREAD_GRAYSCALE)
    h, w = raw.shape
    crop = raw[:, (w - h) // 2:(w - h) // 2 + h]
    drawn = np.zeros(crop.shape + (3,), np.uint8)
    drawn[crop > np.percentile(crop, 95)] = CRACK
    return cv2.resize(drawn, (size, size), interpolation=cv2.INTER_LINEAR)


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> None:
    """Save RGB as JPEG (OpenCV writes BGR)."""
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, quality])


def make_camera_folder(root: Path, count: int = 8, thermal_colormap: str = 'auto',
                       palette: Optional[np.ndarray] = None, tolerance: Optional[float] = 64,
                       splits: Optional[Dict[str, List[str]]] = None) -> Path:
    """Write the folder; ``palette`` (256x3) renders the thermal (default: the camera's).

    ``tolerance`` None leaves ``label_color_tolerance`` out of ``classes.yaml``. Default
    splits: all but the last two frames in ``train.txt``, the last two in ``test.txt`` (all
    in ``train.txt`` for up to 3 frames).
    """
    lut = camera_lut() if palette is None else palette
    for sub in ('rgb', 'aux', 'label'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    names = msrs_names(count)
    for name in names:
        visible = cv2.imread(str(MSRS / 'visible' / f'{name}.png'), cv2.IMREAD_COLOR)
        write_jpeg(root / 'rgb' / f'{name}.jpg', square(visible)[:, :, ::-1])
        write_jpeg(root / 'aux' / f'{name}.jpg', lut[msrs_thermal(name)])
        label = blended_label(name)
        assert cv2.imwrite(str(root / 'label' / f'{name}.png'),
                           np.ascontiguousarray(label[:, :, ::-1]))
    spec = {'class_names': ['_background_', 'crack'], 'aux_modality': 'thermal',
            'thermal_colormap': thermal_colormap,
            'label_colors': {'_background_': [0, 0, 0], 'crack': list(CRACK)}}
    if tolerance is not None:
        spec['label_color_tolerance'] = tolerance
    (root / 'classes.yaml').write_text(yaml.safe_dump(spec, sort_keys=False))
    default = {'train': names[:-2], 'test': names[-2:]} if count > 3 else {'train': names}
    for split, members in (splits or default).items():
        (root / f'{split}.txt').write_text(''.join(n + '\n' for n in members))
    return root
