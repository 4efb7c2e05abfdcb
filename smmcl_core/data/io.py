"""File reading with errors that name the offending file.

OpenCV returns ``None`` for unreadable files and BGR(A) channel order for colour images; these
helpers turn both into explicit behaviour.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from smmcl_core.data.label_colors import colour_codes, colours_to_ids, TableLike

__all__ = ['AUX_EXTENSIONS', 'IMAGE_EXTENSIONS', 'check_jpeg_end', 'check_sample',
           'colour_codes', 'colours_to_ids', 'find_file', 'read_aux', 'read_label', 'read_raw',
           'read_rgb', 'read_split']

IMAGE_EXTENSIONS: Tuple[str, ...] = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
AUX_EXTENSIONS: Tuple[str, ...] = ('.png', '.tif', '.tiff', '.npy', '.jpg', '.jpeg', '.bmp')


def find_file(folder: Path, name: str, extensions: Sequence[str]) -> Path:
    """Return ``folder/name + ext`` for the first existing extension.

    Raises:
        FileNotFoundError: None exists; the message lists every path tried.
    """
    tried = [Path(folder) / f'{name}{ext}' for ext in extensions]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f'no file for sample {name!r}; tried: {", ".join(str(p) for p in tried)}')


def read_raw(path: Path) -> np.ndarray:
    """Read an image (or ``.npy`` array) unchanged: dtype and channel count as stored.

    Colour images come back in OpenCV's BGR / BGRA order.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file exists but cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'missing file: {path}')
    if path.suffix.lower() == '.npy':
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f'unreadable array file {path}: {exc}') from exc
    if path.suffix.lower() in ('.jpg', '.jpeg'):
        check_jpeg_end(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'unreadable image file: {path}')
    return image


def check_jpeg_end(path: Path) -> None:
    """Raise ``ValueError`` when a JPEG file lacks its end-of-image marker (a cut-off copy).

    OpenCV decodes a truncated JPEG without an error (the missing rows come back grey), so
    an interrupted copy would otherwise train as a valid frame. Trailing zero padding is
    accepted.
    """
    with open(path, 'rb') as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read().rstrip(b'\x00')
    if not tail.endswith(b'\xff\xd9'):
        raise ValueError(f'truncated JPEG file (no end-of-image marker; a cut-off copy?): '
                         f'{path}')


def read_rgb(path: Path) -> np.ndarray:
    """Read a colour image as RGB ``uint8 (H,W,3)`` (grey images are replicated).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Undecodable, or not an 8-bit 1/3/4-channel image.
    """
    image = read_raw(path)
    if image.dtype != np.uint8:
        raise ValueError(f'rgb image {path} has dtype {image.dtype}; expected uint8')
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 3:
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, 2::-1])
    raise ValueError(f'rgb image {path} has shape {image.shape}; expected 3 channels')


def read_aux(path: Path, modality: str) -> np.ndarray:
    """Read an aux image as raw values: single-channel (H,W), or RGB-ordered (H,W,3) for HHA.

    A 3-channel file for depth/thermal with equal channels (grey saved as colour) is reduced
    to one channel. An 8-bit colour thermal file (pseudo-colour: ironbow, inferno, ...) is
    returned RGB-ordered ``(H,W,3)``; ``aux_to_unit`` inverts its colour map.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Undecodable, or a channel layout that does not fit the modality.
    """
    image = read_raw(path)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if modality == 'hha':
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'hha image {path} has shape {image.shape}; expected (H,W,3)')
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.ndim == 3:
        if image.shape[2] in (3, 4) and np.array_equal(image[:, :, 0], image[:, :, 1]) \
                and np.array_equal(image[:, :, 0], image[:, :, 2]):
            return np.ascontiguousarray(image[:, :, 0])
        if modality == 'thermal' and image.dtype == np.uint8 and image.shape[2] in (3, 4):
            # Pseudo-colour thermal: RGB order; preprocessing inverts the colour map.
            return np.ascontiguousarray(image[:, :, 2::-1])
        raise ValueError(
            f'{modality} image {path} has shape {image.shape}; expected a single channel')
    return image


def _read_png_label(path: Path) -> Optional[np.ndarray]:
    """Indices of a palette ('P' mode) PNG, or None for any other image.

    OpenCV expands a palette to colours; the indices are what labelme and the VOC tools
    store as class ids, so they are read with Pillow.
    """
    try:
        with Image.open(path) as image:
            if image.mode != 'P':
                return None
            return np.array(image, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ValueError(f'unreadable image file: {path} ({exc})') from exc


def read_label(path: Path, label_colors: Optional[TableLike] = None) -> np.ndarray:
    """Read a label image as ``uint8 (H,W)`` ids.

    Palette PNGs give their indices; grey images their values; colour images are mapped
    with ``label_colors`` (RGB triple -> id, ``classes.yaml`` key ``label_colors``, or a
    ``LabelColorTable`` with its ``label_color_tolerance``, see ``data.label_colors``).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Undecodable, not 8-bit, a colour image without ``label_colors`` or with a
            colour outside it.
    """
    path = Path(path)
    if path.suffix.lower() == '.png' and path.is_file():
        indices = _read_png_label(path)
        if indices is not None:
            return indices
    image = read_raw(path)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype == np.uint8:
        rgb = image[:, :, 2::-1]
        if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and \
                np.array_equal(rgb[:, :, 0], rgb[:, :, 2]) and not label_colors:
            return np.ascontiguousarray(rgb[:, :, 0])  # grey ids saved as colour
        if not label_colors:
            raise ValueError(
                f'label image {path} is a colour image (shape {image.shape}) and no colour '
                f'table is given: save class ids (grey or palette PNG) or add label_colors '
                f'(class name -> [r, g, b]) to classes.yaml')
        return colours_to_ids(rgb, label_colors, path)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(
            f'label image {path} has dtype {image.dtype}, shape {image.shape}; expected '
            f'uint8 (H,W) class ids, a palette PNG or a colour image with label_colors')
    return image


def read_split(path: Path) -> List[str]:
    """Read sample names from a split file: one per line, blank lines and ``#`` skipped.

    A known image extension on an entry is dropped (``0.png`` -> ``0``).

    Raises:
        FileNotFoundError: The split file does not exist.
        ValueError: The split file lists no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'missing split file: {path}')
    names = []
    for line in path.read_text().splitlines():
        entry = line.strip()
        if not entry or entry.startswith('#'):
            continue
        for ext in IMAGE_EXTENSIONS + ('.npy',):
            if entry.lower().endswith(ext):
                entry = entry[:-len(ext)]
                break
        names.append(entry)
    if not names:
        raise ValueError(f'split file {path} lists no samples')
    return names


def check_sample(rgb: np.ndarray, aux: np.ndarray, label: np.ndarray,
                 files: Sequence[Path]) -> None:
    """Raise ``ValueError`` naming the files when rgb, aux and label sizes differ."""
    sizes = [tuple(a.shape[:2]) for a in (rgb, aux, label)]
    if len(set(sizes)) != 1:
        described = ', '.join(f'{path} {size}' for path, size in zip(files, sizes))
        raise ValueError(f'image sizes differ within one sample: {described}')
