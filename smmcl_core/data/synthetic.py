"""SYNTHETIC procedural dark RGB-D / RGB-T scenes with labels (not real data).

For tests, the demo and CPU benchmarks only. A scene is a room/street seen by a level camera:
a far wall (or facade) above a floor, with boxes, people, cars and lamps standing on the floor
or hanging on the wall. Shapes, sizes, positions, albedos and lighting vary per seed.

Why it is a useful stand-in for dark-scene segmentation:
- RGB is rendered in low light (ambient gain 0.02-0.06 plus lamp glow) with shot noise and
  read noise, and object albedos are chosen pairwise similar (person ~ wall, car ~ box), so
  RGB alone is ambiguous.
- Depth carries the geometry (floor ramp, flat wall, flat box fronts, rounded people and car
  bodies, object silhouettes against the wall), thermal carries heat (people hot, cars warm
  with hot wheels/engine, lamps hot, boxes slightly warmer than the background).
- Lamps are the class where RGB is informative (they emit light).

Outputs follow the raw conventions of ``smmcl_core.data``: RGB ``uint8 (H,W,3)``, depth
``uint16`` millimetres (0 = dropout), thermal ``uint8``, label ``uint8 (H,W)`` 0..5.
"""

from pathlib import Path
from typing import Sequence, Tuple

import cv2
import numpy as np
import yaml

from smmcl_core.data.classes import DatasetInfo
from smmcl_core.data.datasets import identity_lut, RGBXDataset

SYNTHETIC_CLASSES: Tuple[str, ...] = ('floor', 'wall', 'box', 'person', 'car', 'lamp')
SYNTHETIC_PALETTE = np.array(
    [[128, 64, 128], [70, 70, 70], [190, 153, 153], [220, 20, 60], [0, 0, 142],
     [250, 170, 30]], np.uint8)
SYNTHETIC_MODALITIES = ('depth', 'thermal')

FLOOR, WALL, BOX, PERSON, CAR, LAMP = range(6)

# Linear reflectances (RGB); pairs person~wall and car~box are deliberately close.
_ALBEDO = {
    FLOOR: (0.30, 0.28, 0.26), WALL: (0.42, 0.42, 0.45), BOX: (0.50, 0.38, 0.22),
    PERSON: (0.40, 0.40, 0.44), CAR: (0.48, 0.38, 0.25),
}
# Thermal level in [0, 1] (8-bit output = level * 255).
_HEAT = {FLOOR: 0.20, WALL: 0.28, BOX: 0.42, PERSON: 0.88, CAR: 0.62, LAMP: 0.95}
_SPLIT_CODES = {'train': 0, 'val': 1, 'test': 2}


def scene_seed(seed: int, split: str, index: int) -> int:
    """Seed of scene ``index`` of ``split`` for a dataset seed (stable across versions)."""
    code = _SPLIT_CODES.get(split)
    if code is None:
        raise ValueError(f'unknown synthetic split {split!r}; valid: {", ".join(_SPLIT_CODES)}')
    return int(np.random.SeedSequence([int(seed), code, int(index)]).generate_state(1)[0])


class _Canvas:
    """Per-pixel label, depth (m), albedo and heat, painted far to near."""

    def __init__(self, height: int, width: int):
        self.rows, self.cols = np.mgrid[0:height, 0:width].astype(np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.depth = np.zeros((height, width), np.float32)
        self.albedo = np.zeros((height, width, 3), np.float32)
        self.heat = np.zeros((height, width), np.float32)
        self.emit = np.zeros((height, width), np.float32)

    def paint(self, mask: np.ndarray, cls: int, depth, albedo, heat) -> None:
        self.label[mask] = cls
        self.depth[mask] = depth[mask] if isinstance(depth, np.ndarray) else depth
        self.albedo[mask] = albedo
        self.heat[mask] = heat[mask] if isinstance(heat, np.ndarray) else heat


def _jitter(rng: np.random.Generator, rgb: Sequence[float], amount: float = 0.06):
    return np.clip(np.asarray(rgb) + rng.uniform(-amount, amount, 3), 0.05, 0.95)


def _scene_geometry(canvas: _Canvas, rng: np.random.Generator, focal: float):
    """Wall + floor; returns (horizon row, camera height m, wall depth m)."""
    height = canvas.label.shape[0]
    horizon = height * rng.uniform(0.30, 0.50)
    cam_h = rng.uniform(0.9, 1.5)
    wall_d = rng.uniform(5.0, 8.0)
    below = canvas.rows - horizon
    floor_d = np.where(below > 0, focal * cam_h / np.maximum(below, 1e-3), np.inf)
    is_floor = floor_d < wall_d
    # The wall is slightly oblique: depth drifts by a few cm across the image.
    wall_depth = (wall_d + 0.0005 * (canvas.cols - canvas.cols.mean())).astype(np.float32)
    canvas.paint(~is_floor, WALL, wall_depth, _jitter(rng, _ALBEDO[WALL]), _HEAT[WALL])
    # The floor warms slightly towards the camera (heat reflected from the scene).
    floor_heat = _HEAT[FLOOR] + 0.05 * np.clip(1.0 - floor_d / wall_d, 0.0, 1.0)
    canvas.paint(is_floor, FLOOR, floor_d.astype(np.float32), _jitter(rng, _ALBEDO[FLOOR]),
                 floor_heat.astype(np.float32))
    return horizon, cam_h, wall_d


def _add_box(canvas, rng, x_px, foot, d, focal):
    w = rng.uniform(0.5, 1.2) * focal / d
    h = rng.uniform(0.4, 1.0) * focal / d
    mask = ((np.abs(canvas.cols - x_px) <= w / 2) & (canvas.rows <= foot)
            & (canvas.rows >= foot - h))
    canvas.paint(mask, BOX, np.float32(d - 0.3), _jitter(rng, _ALBEDO[BOX]), _HEAT[BOX])


def _add_person(canvas, rng, x_px, foot, d, focal):
    scale = focal / d
    tall = rng.uniform(1.5, 1.9) * scale
    half_w = rng.uniform(0.2, 0.28) * scale
    head_r = 0.11 * scale
    xn = (canvas.cols - x_px) / max(half_w, 1e-3)
    body = (np.abs(xn) <= 1.0) & (canvas.rows <= foot) & (canvas.rows >= foot - tall + 2 * head_r)
    head = (canvas.cols - x_px) ** 2 + (canvas.rows - (foot - tall + head_r)) ** 2 <= head_r ** 2
    mask = body | head
    depth = (d - 0.2 * np.sqrt(np.clip(1.0 - xn ** 2, 0.0, 1.0))).astype(np.float32)
    heat = (_HEAT[PERSON] + 0.05 * head).astype(np.float32)  # the face is the warmest part
    canvas.paint(mask, PERSON, depth, _jitter(rng, _ALBEDO[PERSON]), heat)


def _add_car(canvas, rng, x_px, foot, d, focal):
    scale = focal / d
    half_w = rng.uniform(0.8, 2.0) * scale
    body_h = rng.uniform(0.6, 0.8) * scale
    cabin_h = rng.uniform(0.4, 0.6) * scale
    xn = (canvas.cols - x_px) / max(half_w, 1e-3)
    body = (np.abs(xn) <= 1.0) & (canvas.rows <= foot) & (canvas.rows >= foot - body_h)
    cabin = ((np.abs(xn) <= 0.6) & (canvas.rows < foot - body_h)
             & (canvas.rows >= foot - body_h - cabin_h * (1.0 - (np.abs(xn) / 0.6) ** 4)))
    mask = body | cabin
    depth = (d - 0.6 * np.clip(1.0 - xn ** 2, 0.0, 1.0)).astype(np.float32)
    # Wheels / engine: the lowest quarter of the body is hotter.
    heat = (_HEAT[CAR] + 0.15 * (canvas.rows > foot - 0.25 * body_h)).astype(np.float32)
    canvas.paint(mask, CAR, depth, _jitter(rng, _ALBEDO[CAR]), heat)


def _add_lamp(canvas, rng, wall_d, focal, horizon):
    radius = max(rng.uniform(0.12, 0.25) * focal / wall_d, 1.5)
    width = canvas.label.shape[1]
    cx = rng.uniform(0.05, 0.95) * width
    cy = rng.uniform(0.1, 0.9) * horizon
    mask = (canvas.cols - cx) ** 2 + (canvas.rows - cy) ** 2 <= radius ** 2
    canvas.paint(mask, LAMP, np.float32(wall_d - 0.1), (0.9, 0.85, 0.7), _HEAT[LAMP])
    canvas.emit[mask] = 1.0
    return cx, cy, radius


def _render_rgb(canvas: _Canvas, rng: np.random.Generator, lamps) -> np.ndarray:
    ambient = rng.uniform(0.02, 0.06)
    illum = np.full(canvas.label.shape, ambient, np.float32)
    for cx, cy, radius in lamps:
        r2 = (canvas.cols - cx) ** 2 + (canvas.rows - cy) ** 2
        sigma = radius * rng.uniform(4.0, 8.0)
        illum += rng.uniform(0.05, 0.15) * np.exp(-r2 / (2 * sigma ** 2))
    # Low-frequency texture so that surfaces are not flat colours.
    h, w = canvas.label.shape
    texture = cv2.resize(rng.uniform(0.8, 1.2, (max(h // 8, 2), max(w // 8, 2)))
                         .astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    radiance = canvas.albedo * (illum * texture)[:, :, None]
    radiance = np.where(canvas.emit[:, :, None] > 0, canvas.albedo, radiance)
    # Sensor: few photons per DN at low light -> visible shot noise, plus read noise.
    photons_per_dn = 0.8
    mean_dn = radiance * 255.0
    shot = rng.poisson(np.maximum(mean_dn * photons_per_dn, 0.0)) / photons_per_dn
    noisy = shot + rng.normal(0.0, 1.5, shot.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _render_depth(canvas: _Canvas, rng: np.random.Generator) -> np.ndarray:
    depth = canvas.depth
    # Structured-light-like noise growing with distance squared, and random dropouts.
    noisy = depth + rng.normal(0.0, 1.0, depth.shape) * 0.003 * depth ** 2
    mm = np.clip(np.rint(noisy * 1000.0), 0, 65535).astype(np.uint16)
    mm[rng.random(depth.shape) < 0.01] = 0
    return mm


def _render_thermal(canvas: _Canvas, rng: np.random.Generator) -> np.ndarray:
    heat = cv2.GaussianBlur(canvas.heat, (0, 0), sigmaX=1.0)  # thermal optics are soft
    heat = heat + rng.normal(0.0, 0.02, heat.shape)
    return np.clip(np.rint(heat * 255.0), 0, 255).astype(np.uint8)


def render_scene(seed: int, height: int = 240, width: int = 320, modality: str = 'depth'
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one SYNTHETIC dark scene.

    Args:
        seed: Scene seed; the output is a pure function of (seed, height, width, modality).
        height: Image height in pixels (>= 16).
        width: Image width in pixels (>= 16).
        modality: ``'depth'`` or ``'thermal'``.

    Returns:
        ``(rgb uint8 (H,W,3), aux, label uint8 (H,W))`` with aux ``uint16`` millimetres for
        depth or ``uint8`` for thermal; label ids index :data:`SYNTHETIC_CLASSES`.
    """
    if modality not in SYNTHETIC_MODALITIES:
        raise ValueError(
            f'unknown synthetic modality {modality!r}; valid: {", ".join(SYNTHETIC_MODALITIES)}')
    if height < 16 or width < 16:
        raise ValueError(f'synthetic scenes need height and width >= 16, got {height}x{width}')
    rng = np.random.default_rng(int(seed))
    canvas = _Canvas(height, width)
    focal = 0.9 * width
    horizon, cam_h, wall_d = _scene_geometry(canvas, rng, focal)

    lamps = [_add_lamp(canvas, rng, wall_d, focal, horizon)
             for _ in range(int(rng.integers(1, 3)))]
    adders = (_add_box, _add_person, _add_car)
    objects = [(rng.uniform(2.0, wall_d - 0.5), int(rng.integers(len(adders))),
                rng.uniform(0.0, 1.0)) for _ in range(int(rng.integers(2, 6)))]
    for d, kind, x in sorted(objects, reverse=True):  # far first: near objects occlude
        foot = horizon + focal * cam_h / d
        adders[kind](canvas, rng, x * width, foot, d, focal)

    rgb = _render_rgb(canvas, rng, lamps)
    aux = _render_depth(canvas, rng) if modality == 'depth' else _render_thermal(canvas, rng)
    return rgb, aux, canvas.label.copy()


def synthetic_info(modality: str) -> DatasetInfo:
    """:class:`DatasetInfo` of the synthetic scenes for one aux modality."""
    return DatasetInfo('synthetic', SYNTHETIC_CLASSES, SYNTHETIC_PALETTE,
                       aux_modality=modality)


class SyntheticDarkScenes(RGBXDataset):
    """SYNTHETIC dataset of procedurally rendered dark scenes (see module docstring).

    Args:
        length: Number of scenes.
        height: Image height.
        width: Image width.
        modality: ``'depth'`` or ``'thermal'``.
        seed: Dataset seed; scene ``i`` of ``split`` uses ``scene_seed(seed, split, i)``.
        split: ``'train'``, ``'val'`` or ``'test'`` (disjoint scene seeds).
        **kwargs: Transform options of :class:`RGBXDataset` (train, crop_size, ...).
    """

    def __init__(self, length: int = 64, height: int = 120, width: int = 160,
                 modality: str = 'depth', seed: int = 0, split: str = 'train', **kwargs):
        kwargs.setdefault('seed', seed)
        super().__init__(**kwargs)
        if modality not in SYNTHETIC_MODALITIES:
            raise ValueError(
                f'unknown synthetic modality {modality!r}; valid: '
                f'{", ".join(SYNTHETIC_MODALITIES)}')
        self.height, self.width, self.split = int(height), int(width), split
        self.names = [f'{split}_{i:06d}' for i in range(int(length))]
        self._seeds = [scene_seed(seed, split, i) for i in range(int(length))]
        self._seed_of = dict(zip(self.names, self._seeds))
        self.label_lut = identity_lut(len(SYNTHETIC_CLASSES))
        self.info = synthetic_info(modality)
        self._setup_transform()

    def _read(self, name: str):
        rgb, aux, label = render_scene(self._seed_of[name], self.height, self.width,
                                       self.aux_modality)
        where = [Path(f'<synthetic {name}>')] * 3
        return rgb, aux, label, where


def write_synthetic_folder(root: Path, n_train: int = 32, n_test: int = 8, height: int = 120,
                           width: int = 160, modality: str = 'depth', seed: int = 0) -> Path:
    """Write SYNTHETIC scenes in the generic folder layout (``rgb/``, ``aux/``, ``label/``).

    Sample ``i`` of split ``s`` is ``render_scene(scene_seed(seed, s, i), ...)``, i.e. the
    same scene as ``SyntheticDarkScenes(..., seed=seed, split=s)[i]``.

    Returns:
        ``root`` as a Path; it holds ``classes.yaml``, ``train.txt``, ``test.txt``.
    """
    root = Path(root)
    for sub in ('rgb', 'aux', 'label'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for split, count in (('train', n_train), ('test', n_test)):
        names = []
        for i in range(int(count)):
            name = f'{split}_{i:06d}'
            rgb, aux, label = render_scene(scene_seed(seed, split, i), height, width, modality)
            for path, image in ((root / 'rgb' / f'{name}.png', rgb[:, :, ::-1]),
                                (root / 'aux' / f'{name}.png', aux),
                                (root / 'label' / f'{name}.png', label)):
                if not cv2.imwrite(str(path), np.ascontiguousarray(image)):
                    raise OSError(f'could not write {path}')
            names.append(name)
        (root / f'{split}.txt').write_text(''.join(f'{n}\n' for n in names))
    classes = {
        'name': 'synthetic',
        'class_names': list(SYNTHETIC_CLASSES),
        'palette': SYNTHETIC_PALETTE.tolist(),
        'aux_modality': modality,
        'ignore_index': 255,
    }
    (root / 'classes.yaml').write_text(
        '# SYNTHETIC procedural dark scenes (smmcl_core.data.synthetic), not real data.\n'
        + yaml.safe_dump(classes, sort_keys=False))
    return root
