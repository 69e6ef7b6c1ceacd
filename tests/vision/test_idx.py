"""IDX parsing: raw and gzipped files, bad magic, truncation."""

import gzip

import numpy as np
import pytest

from graphc.vision.idx import IDXError, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) * 3 - 7).astype(dtype)
    path = tmp_path / f"data-idx3{suffix}"
    write_idx(path, array)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    out = read_idx(path)
    assert out.dtype == dtype and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, array)


def test_header_is_big_endian():
    data = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + bytes([0x01, 0x02, 0xFF, 0xFE])
    np.testing.assert_array_equal(parse_idx(data), [0x0102, -2])


def test_bad_magic_and_type(tmp_path):
    with pytest.raises(IDXError, match="magic"):
        parse_idx(b"\x01\x00\x08\x01\x00\x00\x00\x00", "f")
    with pytest.raises(IDXError, match="type code 0x07"):
        parse_idx(b"\x00\x00\x07\x01\x00\x00\x00\x00", "f")
    path = tmp_path / "x.idx"
    path.write_bytes(b"hello world")
    with pytest.raises(IDXError, match="x.idx"):
        read_idx(path)


def test_truncated_and_trailing(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((3, 28, 28), np.uint8))
    full = path.read_bytes()
    with pytest.raises(IDXError, match="truncated IDX file"):
        parse_idx(full[:-10], "images")
    with pytest.raises(IDXError, match="truncated IDX header"):
        parse_idx(full[:9], "images")
    with pytest.raises(IDXError, match="trailing"):
        parse_idx(full + b"\x00", "images")
    with pytest.raises(IDXError, match="expected 1 dimensions"):
        parse_idx(full, "images", expected_ndim=1)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(100))[:-12])
    with pytest.raises(IDXError, match="gzip"):
        read_idx(path)
