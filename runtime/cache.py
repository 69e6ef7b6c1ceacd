"""The compile cache: native code by key, in memory and on disk.

The key (`cache_key`) is a sha256 over everything that changes the machine
code: the fused program's text (kernels, expressions, buffer types, memory
plan), the code generator's settings and the host (llvmlite and LLVM
versions, CPU name and features). Constant arrays are not part of the code
(they are passed by pointer), so they are not part of the key.

A second kind of entry is keyed on the traced graph (runtime/cpu.py
`graph_key`): a manifest only, `<key>.json`, holding what an executable
needs besides the object code (buffer placement, constants, work) and the
key and sha256 of the program entry whose object code it runs, so that a
hit skips the optimisation passes, fusion and memory planning. Its content
is hash-verified like an object file (`content_sha256`). GEMM routines are
a third kind: program entries whose manifest names the symbol.

On disk (default ~/.cache/graphc, moved by GRAPHC_CACHE_DIR; GRAPHC_CACHE=0
turns it off) an entry is two files: `<key>.o` (object code) and
`<key>.json` (a small manifest: format version, the buffer order of the
entry point, and the sha256 of the object file). Nothing is unpickled or
executed on load. A manifest whose hash does not match its object file is a
corrupt entry: it is ignored (and later overwritten). Writers write a temp
file and `os.replace` it, manifest last, so two processes writing the same
entry never leave a torn file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

FORMAT = 2


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def cache_dir() -> Path | None:
    """The disk cache folder, or None when the disk cache is off."""
    if os.environ.get("GRAPHC_CACHE", "1") == "0":
        return None
    base = os.environ.get("GRAPHC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphc")
    return Path(base)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(key: str) -> tuple[bytes, dict] | None:
    """(object code, manifest) of a valid disk entry, or None."""
    d = cache_dir()
    if d is None:
        return None
    try:
        manifest = json.loads((d / f"{key}.json").read_text())
        obj = (d / f"{key}.o").read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    if manifest.get("sha256") != hashlib.sha256(obj).hexdigest():
        return None  # corrupt or half-replaced entry: recompile
    return obj, manifest


def store(key: str, obj: bytes, manifest: dict) -> None:
    """Write an entry; failures (read-only disk, full disk) are ignored."""
    d = cache_dir()
    if d is None:
        return
    manifest = dict(manifest, format=FORMAT, sha256=hashlib.sha256(obj).hexdigest())
    try:
        d.mkdir(parents=True, exist_ok=True)
        _atomic_write(d / f"{key}.o", obj)
        _atomic_write(d / f"{key}.json", json.dumps(manifest).encode())
    except OSError:
        pass


def _content_hash(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "content_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_manifest(key: str) -> dict | None:
    """A valid manifest-only entry (see `store_manifest`), or None."""
    d = cache_dir()
    if d is None:
        return None
    try:
        manifest = json.loads((d / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    if manifest.get("content_sha256") != _content_hash(manifest):
        return None  # corrupt entry: recompute and overwrite
    return manifest


def store_manifest(key: str, manifest: dict) -> None:
    """Write a manifest-only entry, hashed over its own content; failures
    are ignored."""
    d = cache_dir()
    if d is None:
        return
    manifest = dict(manifest, format=FORMAT)
    manifest["content_sha256"] = _content_hash(manifest)
    try:
        d.mkdir(parents=True, exist_ok=True)
        _atomic_write(d / f"{key}.json", json.dumps(manifest).encode())
    except OSError:
        pass
