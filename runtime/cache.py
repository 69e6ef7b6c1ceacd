"""The compile cache on disk, for every backend, and the atomic file writer.

Keys. `cache_key(kind, *parts)` is the one key function: a sha256 over the
entry format, `code_version()` (the source of everything that generates
code: codegen/, passes/, graphc/ir/ and the runtime's compilers), the
environment variables that change generated code (`config.code_settings()`,
graphc/config.py), the kind
of entry and the caller's parts, each length-prefixed so that no two
different inputs collide by concatenation. Callers pass what else changes
the code: the CPU backend the target (llvmlite and LLVM versions, CPU name
and features, optimisation levels) and its run-time settings; the CUDA
backend the GPU architecture, nvcc's version and flags. Kinds in use:

- "cpu-program": object code of a fused program, by the program's text and
  memory plan (runtime/native.py); "cpu-gemm" and "cpu-pool": the GEMM
  routines and the thread pool's hand-off code, loaded once per process;
- "cpu-graph": a manifest only (empty payload), keyed on the traced graph
  before any pass, holding what an executable needs besides the object code
  (buffer placement, constants, work) and the key and sha256 of the program
  entry it runs, so that a hit skips optimisation, fusion and planning;
- "cuda-cubin": a cubin, by its CUDA C source (runtime/cuda.py).

Entries. On disk (default ~/.cache/graphc, moved by GRAPHC_CACHE_DIR;
GRAPHC_CACHE=0 turns it off) an entry is one file `<key>.entry`:

    GRAPHC-CACHE <format> <sha256 of the rest>\\n<JSON header>\\n<payload>

The header holds the entry's own full key and the caller's manifest. A load
checks the format, the hash (a truncated or corrupt file) and that the key
inside is the key asked for (a file copied or renamed from another entry);
anything else is a miss, the caller recompiles and the entry is rewritten.
GRAPHC_DEBUG=1 prints why an entry was ignored. Nothing is unpickled or
executed on load.

Writes go through `atomic_write` (also used by `graphc.save`): a temp file
in the same folder, fsync, `os.replace`; two processes writing one entry
never leave a torn file, and files get the usual permissions (0666 less the
umask, 0644 by default), not a temp file's 0600.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
from pathlib import Path

from graphc import config, debug

FORMAT = 3
_MAGIC = b"GRAPHC-CACHE "
_SUFFIX = ".entry"
# The graphc package (not resolving links: in a checkout graphc/runtime links
# to the top-level runtime/ folder).
_ROOT = Path(os.path.abspath(__file__)).parent.parent
# Sources whose edits change generated code (or how an entry is read).
_CODE_DIRS = ("codegen", "passes", "ir")
_CODE_FILES = (
    "config.py",
    "runtime/cache.py",
    "runtime/cpu.py",
    "runtime/cuda.py",
    "runtime/executable.py",
    "runtime/native.py",
    "runtime/threads.py",
)


@functools.cache
def code_version() -> str:
    """sha256 (hex, 16 digits) of every source file that generates code:
    editing any of them must invalidate cached code."""
    files = [p for d in _CODE_DIRS for p in sorted((_ROOT / d).rglob("*.py"))]
    files += [_ROOT / f for f in _CODE_FILES]
    h = hashlib.sha256()
    for path in files:
        h.update(str(path.relative_to(_ROOT)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(kind: str, *parts: str) -> str:
    """The key of an entry of `kind` (see the module doc)."""
    h = hashlib.sha256()
    for part in (str(FORMAT), code_version(), config.code_settings(), kind, *parts):
        data = part.encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def cache_dir() -> Path | None:
    """The disk cache folder, or None when the disk cache is off."""
    if not config.get("GRAPHC_CACHE"):
        return None
    base = config.get("GRAPHC_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graphc")
    return Path(base)


def entry_path(key: str) -> Path | None:
    """The file of entry `key`, or None when the disk cache is off."""
    d = cache_dir()
    return None if d is None else d / f"{key}{_SUFFIX}"


def _debug(text: str) -> None:
    debug.dump(1, text)


def _unpack(data: bytes, key: str) -> tuple[bytes, dict] | str:
    """(payload, manifest) of a valid entry for `key`, else why not."""
    head_end = data.find(b"\n")
    head = data[:head_end].split(b" ") if data.startswith(_MAGIC) and head_end > 0 else []
    if len(head) != 3:
        return "not a graphc cache entry"
    if head[1] != str(FORMAT).encode():
        return f"format {head[1].decode(errors='replace')}, expected {FORMAT}"
    rest = data[head_end + 1 :]
    if hashlib.sha256(rest).hexdigest().encode() != head[2]:
        return "corrupt (content hash mismatch)"
    header_end = rest.find(b"\n")
    try:
        manifest = json.loads(rest[:header_end])
    except ValueError:
        return "corrupt (unreadable header)"
    if not isinstance(manifest, dict) or header_end < 0:
        return "corrupt (unreadable header)"
    stored = manifest.pop("key", None)
    if stored != key:
        return f"it holds the entry of another key ({str(stored)[:16]}...)"
    return rest[header_end + 1 :], manifest


def load(key: str) -> tuple[bytes, dict] | None:
    """(payload, manifest) of the valid disk entry `key`, or None (a miss:
    absent, cache off, or invalid; GRAPHC_DEBUG=1 says why it was invalid)."""
    path = entry_path(key)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    entry = _unpack(data, key)
    if isinstance(entry, str):
        _debug(f"compile cache: ignoring {path.name}: {entry}; it will be rewritten")
        return None
    return entry


def store(key: str, payload: bytes, manifest: dict) -> None:
    """Write entry `key`; failures (read-only or full disk) are ignored:
    they only cost the caching."""
    path = entry_path(key)
    if path is None:
        return
    header = json.dumps(dict(manifest, key=key), sort_keys=True).encode()
    rest = header + b"\n" + payload
    data = _MAGIC + f"{FORMAT} {hashlib.sha256(rest).hexdigest()}\n".encode() + rest
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError:
        pass


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically: a temp file in the same folder,
    fsync, `os.replace`; an interrupted write leaves the old file intact.
    The file is created with mode 0666 less the umask (0644 by default),
    as `open()` would."""
    path = Path(path)
    folder = path.parent
    for _ in range(100):
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            # O_EXCL: never write through a file or link someone else made.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temp file beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; not possible on every platform or filesystem."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
