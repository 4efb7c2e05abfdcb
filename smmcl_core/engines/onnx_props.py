"""``metadata_props`` of an ONNX file, read from the protobuf wire format (no onnx package).

An ONNX file is one serialised ``ModelProto``. Its ``metadata_props`` (field 14) are
``StringStringEntryProto`` messages (``key`` = field 1, ``value`` = field 2). Every other
top-level field is skipped by its length without being read, so the graph and its weights
(field 7, nearly the whole file) never enter memory: an engine-only install does not need the
``onnx`` package (16 MiB imported, and ``onnx.load`` held the whole file) to find the smmcl
metadata of a graph it is about to run.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Dict, Tuple

METADATA_PROPS = 14  # ModelProto.metadata_props
_KEY, _VALUE = 1, 2  # StringStringEntryProto
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5  # protobuf wire types
_MAX_ENTRY = 64 << 20  # a metadata entry larger than this is not a sane ONNX file


class WireFormatError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(stream: BinaryIO) -> int:
    """One base-128 varint; EOFError at a clean end of the stream."""
    value, shift = 0, 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift == 0:
                raise EOFError
            raise WireFormatError('file ends inside a varint')
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise WireFormatError('varint longer than 10 bytes')


def _skip(stream: BinaryIO, wire_type: int, size: int) -> None:
    """Skip one field's payload of ``wire_type`` (``size`` bytes for length-delimited)."""
    if wire_type == _VARINT:
        _varint(stream)
        return
    length = {_FIXED64: 8, _FIXED32: 4, _LENGTH: size}.get(wire_type)
    if length is None:
        raise WireFormatError(f'unsupported wire type {wire_type}')
    stream.seek(length, os.SEEK_CUR)


def _entry(data: bytes) -> Tuple[str, str]:
    """``(key, value)`` of one serialised StringStringEntryProto."""
    stream, fields = io.BytesIO(data), {_KEY: '', _VALUE: ''}
    while True:
        try:
            tag = _varint(stream)
        except EOFError:
            return fields[_KEY], fields[_VALUE]
        number, wire_type = tag >> 3, tag & 7
        size = _varint(stream) if wire_type == _LENGTH else 0
        if number in fields and wire_type == _LENGTH:
            raw = stream.read(size)
            if len(raw) != size:
                raise WireFormatError('metadata entry ends early')
            fields[number] = raw.decode('utf-8')
        else:
            _skip(stream, wire_type, size)


def read_metadata_props(path: os.PathLike) -> Dict[str, str]:
    """Every ``metadata_props`` entry of the ONNX file ``path`` (key -> value).

    Raises:
        OSError: The file cannot be read.
        WireFormatError: It is not a serialised protobuf message (not an ONNX file).
    """
    props: Dict[str, str] = {}
    total = os.path.getsize(path)
    with open(path, 'rb') as stream:
        while True:
            try:
                tag = _varint(stream)
            except EOFError:
                return props
            number, wire_type = tag >> 3, tag & 7
            if number == 0:
                raise WireFormatError('field number 0')
            size = _varint(stream) if wire_type == _LENGTH else 0
            if wire_type == _LENGTH and stream.tell() + size > total:
                raise WireFormatError(f'field {number} runs past the end of the file')
            if number == METADATA_PROPS and wire_type == _LENGTH:
                if size > _MAX_ENTRY:
                    raise WireFormatError(f'metadata entry of {size} bytes')
                key, value = _entry(stream.read(size))
                props[key] = value
            else:
                _skip(stream, wire_type, size)
