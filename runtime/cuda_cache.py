"""On-disk cache of compiled CUDA modules (cubins).

An entry is keyed by sha256(source, GPU arch, nvcc version, flags): any
change to the generated code, the target GPU, the compiler or a flag that
changes code gives a new key. Entries live under
`$GRAPHC_CACHE_DIR/cuda` (default `~/.cache/graphc/cuda`) as

    GRAPHC-CUBIN 1 <sha256 of the payload>\\n<payload>

written to a temporary file in the same folder and moved into place with
`os.replace`, so a reader never sees a half-written entry. A read verifies
the payload's hash; an entry that fails (truncated, corrupted) is deleted
and the caller recompiles.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

_MAGIC = b"GRAPHC-CUBIN 1 "


def default_dir() -> Path:
    """`$GRAPHC_CACHE_DIR/cuda`, else `~/.cache/graphc/cuda`."""
    base = os.environ.get("GRAPHC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphc")
    return Path(base) / "cuda"


def cache_key(source: str, arch: str, nvcc_version: str, flags: Sequence[str]) -> str:
    """The entry key: every input that changes the compiled code is hashed,
    each length-prefixed so that no two different inputs collide by
    concatenation."""
    h = hashlib.sha256()
    for part in (source, arch, nvcc_version, "\0".join(flags)):
        data = part.encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class CubinCache:
    """A folder of verified cubin entries (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_dir()
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.cubin"

    def get(self, key: str) -> bytes | None:
        """The cached payload for `key`, or None if absent or corrupt (a
        corrupt entry is removed)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        payload = _unpack(data)
        if payload is None:
            try:
                path.unlink()
            except OSError:
                pass  # another process may have replaced or removed it already
        return payload

    def put(self, key: str, payload: bytes) -> Path:
        """Store `payload` atomically; returns the entry's path."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(payload).hexdigest().encode()
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + digest + b"\n" + payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def get_or_compile(self, key: str, compile_fn: Callable[[], bytes]) -> bytes:
        """The payload for `key`, compiling (and storing) it on a miss. A
        cache folder that cannot be written only costs the caching."""
        payload = self.get(key)
        if payload is not None:
            self.hits += 1
            return payload
        self.misses += 1
        payload = compile_fn()
        try:
            self.put(key, payload)
        except OSError:
            pass
        return payload


def _unpack(data: bytes) -> bytes | None:
    if not data.startswith(_MAGIC):
        return None
    head_end = data.find(b"\n", len(_MAGIC))
    if head_end < 0:
        return None
    digest = data[len(_MAGIC) : head_end].decode("ascii", "replace")
    payload = data[head_end + 1 :]
    if hashlib.sha256(payload).hexdigest() != digest:
        return None
    return payload
