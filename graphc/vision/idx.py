"""Reader for the IDX file format of MNIST-style datasets (raw or gzipped).

Layout: two zero bytes, a type code, the number of dimensions `n`; then `n`
big-endian uint32 sizes; then the data, big-endian, row-major. Every field
is validated and a file whose length disagrees with its header raises
`IDXError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from graphc.errors import GraphcError

__all__ = ["IDXError", "read_idx", "parse_idx", "write_idx"]

# IDX type code -> big-endian numpy dtype.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}


class IDXError(GraphcError, ValueError):
    """An IDX file is malformed: wrong magic number, unknown type code,
    unexpected dimensions, or a length that disagrees with its header
    (usually a truncated download). Fix: delete the file and download it
    again."""


def parse_idx(data: bytes, name: str = "<bytes>", expected_ndim: int | None = None) -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array."""
    if len(data) < 4:
        raise IDXError(f"{name}: not an IDX file (only {len(data)} bytes, the header alone needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise IDXError(
            f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()}; IDX files start with two zero bytes)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise IDXError(
            f"{name}: unknown IDX type code 0x{code:02x} (known: {', '.join(f'0x{c:02x}' for c in IDX_TYPES)})"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXError(f"{name}: expected {expected_ndim} dimensions, the header says {ndim}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(f"{name}: truncated IDX header ({len(data)} bytes, {header_size} needed for {ndim} dims)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise IDXError(f"{name}: truncated IDX file: shape {shape} needs {expected} bytes, found {len(data)}")
    if len(data) > expected:
        raise IDXError(f"{name}: IDX file has {len(data) - expected} unexpected trailing bytes after shape {shape}")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _read_bytes(path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise IDXError(f"{path}: corrupt or truncated gzip file ({exc})") from None


def read_idx(path, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file, gzipped (detected by its magic bytes) or raw."""
    return parse_idx(_read_bytes(path), os.fspath(path), expected_ndim)


def write_idx(path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write `array` as an IDX file (gzipped when `compress`, by default
    when the name ends in .gz). Used by tests and tools."""
    array = np.asarray(array)
    code = _CODE_OF.get(array.dtype.newbyteorder("="))
    if code is None:
        raise IDXError(f"IDX cannot store numpy dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(IDX_TYPES[code]).tobytes()
    if compress if compress is not None else os.fspath(path).endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
