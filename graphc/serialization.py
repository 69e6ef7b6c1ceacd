"""`graphc.save` / `graphc.load`: checkpoints in the safetensors format.

A checkpoint holds any nesting of dicts, lists and tuples whose leaves are
tensors, numpy arrays, ints, floats, bools, strings or None (a model's
`state_dict()`, an optimizer's, a training checkpoint bundling both). Tensors
become safetensors entries named by their key path (`fc1.weight`,
`optimizer.state.0.exp_avg`); the structure is JSON in the safetensors
`__metadata__` under the key `graphc.structure`. Nothing is pickled and
nothing executes on load: loading parses JSON and copies bytes.

`load` also reads plain safetensors files and PyTorch's checkpoints (the
zip and legacy formats of `torch.save`, through the restricted unpickler
of `graphc/_torch_pickle.py`); the format is told by the first bytes.

Writes are atomic (runtime/cache.py `atomic_write`, shared with the compile
cache): a temp file in the target's folder, fsync, then `os.replace`, so an
interrupted save leaves the previous file intact; the file's mode is 0666
less the umask (0644 by default), as with `torch.save`.
A file that is not a valid checkpoint raises `CheckpointError`.
"""

from __future__ import annotations

import io
import json
import math
import mmap as mmap_module
import os
import struct
from collections import OrderedDict

import numpy as np
import safetensors.numpy

import graphc
from graphc import _torch_pickle
from graphc._torch_pickle import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals
from graphc.errors import CheckpointError
from graphc.ir.dtypes import DType
from graphc.runtime.cache import atomic_write

__all__ = [
    "save",
    "load",
    "CheckpointError",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "safe_globals",
]

_STRUCTURE_KEY = "graphc.structure"
_FORMAT_KEY = "format"
_FORMAT = "graphc"
# Upper bound on the JSON header, as the safetensors format itself uses.
_MAX_HEADER = 100 * 1024 * 1024
# Deepest nesting of lists, tuples and dicts a checkpoint may hold. Real ones
# nest a few levels (checkpoint -> optimizer -> state -> param); the bound
# keeps a crafted file (or a reference cycle on save) from exhausting
# Python's recursion limit.
_MAX_DEPTH = 200
_ST_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "I16": 2,
    "I32": 4,
    "I64": 8,
    "F16": 2,
    "F32": 4,
    "F64": 8,
    "BF16": 2,
    "U16": 2,
    "U32": 4,
    "U64": 8,
}
_ST_NUMPY = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "I16": "<i2",
    "I32": "<i4",
    "I64": "<i8",
    "F16": "<f2",
    "F32": "<f4",
    "F64": "<f8",
    "BF16": "<u2",
    "U16": "<u2",
    "U32": "<u4",
    "U64": "<u8",
}


# -- encoding ---------------------------------------------------------------


class _Encoder:
    """Walks an object tree, collecting arrays and building the JSON tree."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._names_by_id: dict[int, str] = {}
        self._keep_alive: list = []
        self._depth = 0

    def encode(self, obj, path: str):
        if isinstance(obj, (dict, list, tuple)):
            if self._depth >= _MAX_DEPTH:
                raise CheckpointError(
                    f"graphc.save: the object nests lists, tuples and dicts more than {_MAX_DEPTH} levels deep "
                    f"(a reference cycle?), at '{path[:60]}...'"
                )
            self._depth += 1
            try:
                return self._container(obj, path)
            finally:
                self._depth -= 1
        if isinstance(obj, graphc.Tensor):
            return self._tensor(obj, path)
        if isinstance(obj, np.ndarray):
            return {"$ndarray": self._store(obj, obj, path)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            value = float(obj)
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(obj, DType):
            return {"$dtype": obj.name}
        raise CheckpointError(
            f"graphc.save cannot store an object of type {type(obj).__name__} at "
            f"'{path or '<root>'}': only tensors, numpy arrays, numbers, strings, None and "
            "lists, tuples and dicts of them"
        )

    def _container(self, obj, path: str):
        if isinstance(obj, dict):
            return self._dict(obj, path)
        items = [self.encode(v, _join(path, str(i))) for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else {"$list": items}

    def _dict(self, obj: dict, path: str):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise CheckpointError(
                    f"graphc.save: dict key {key!r} at '{path or '<root>'}' has type "
                    f"{type(key).__name__}; keys must be strings, numbers, bools or None"
                )
            items.append([self.encode(key, path), self.encode(value, _join(path, str(key)))])
        tag = "$odict" if isinstance(obj, OrderedDict) else "$dict"
        return {tag: items}

    def _tensor(self, tensor, path: str):
        if getattr(tensor, "is_symbolic", False) is True:
            raise CheckpointError(f"graphc.save: the tensor at '{path or '<root>'}' is symbolic (inside a trace)")
        # CUDA data is copied to the host.
        node = {"$tensor": self._store(tensor, tensor.detach().numpy(force=True), path)}
        if tensor.requires_grad:
            node["requires_grad"] = True
        return node

    def _store(self, owner, array: np.ndarray, path: str) -> str:
        # The same object stored twice (tied weights) becomes one entry.
        if id(owner) in self._names_by_id:
            return self._names_by_id[id(owner)]
        name = path or "tensor"
        suffix = 1
        while name in self.arrays:
            name, suffix = f"{path or 'tensor'}#{suffix}", suffix + 1
        if array.dtype.kind not in "biuf":
            raise CheckpointError(f"graphc.save: the array at '{name}' has unsupported dtype {array.dtype}")
        self.arrays[name] = np.require(array, requirements="C")  # keeps 0-d arrays 0-d
        self._names_by_id[id(owner)] = name
        self._keep_alive.append(owner)  # ids stay unique while encoding
        return name


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _to_bytes(obj) -> bytes:
    encoder = _Encoder()
    structure = encoder.encode(obj, "")
    metadata = {_FORMAT_KEY: _FORMAT, _STRUCTURE_KEY: json.dumps(structure, allow_nan=False)}
    return safetensors.numpy.save(encoder.arrays, metadata=metadata)


# -- writing ----------------------------------------------------------------


def save(obj, f) -> None:
    """Save a tensor or a nested dict/list of tensors and plain values to a
    path or a writable binary file object (safetensors format, atomic for
    paths).

    >>> graphc.save({'w': graphc.ones(2), 'epoch': 3}, 'ckpt.pth')   # doctest: +SKIP
    >>> graphc.load('ckpt.pth')['epoch']                               # doctest: +SKIP
    3
    """
    data = _to_bytes(obj)
    if hasattr(f, "write"):
        f.write(data)
        return
    atomic_write(os.fspath(f), data)


# -- reading ----------------------------------------------------------------


def _describe(source) -> str:
    return os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "the file object"


def _sniff(head: bytes) -> str:
    """The format of a file from its first bytes (never its name):
    'safetensors', 'zip' (torch.save), 'pickle' (legacy torch.save), 'tar'
    or 'unknown' (left to the safetensors parser, which names the problem)."""
    # A safetensors file has its JSON header at byte 8; its 8-byte length
    # could start like a pickle, so that test comes first.
    if head[8:9] == b"{":
        return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head[257:262] == b"ustar":
        return "tar"
    return "unknown"


def _parse_header(data, name: str) -> dict:
    """Validate the safetensors framing and return its JSON header."""
    bad = f"{name} is not a valid graphc checkpoint"
    if len(data) < 8:
        raise CheckpointError(f"{bad} (truncated header: {len(data)} bytes, at least 8 needed)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > _MAX_HEADER:
        raise CheckpointError(f"{bad} (header length {header_len} is implausible: corrupt file)")
    if 8 + header_len > len(data):
        raise CheckpointError(f"{bad} (truncated header: {header_len} bytes announced, {len(data) - 8} present)")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{bad} (corrupt header: {exc})") from None
    except RecursionError:
        raise CheckpointError(f"{bad} (corrupt header: nested too deeply to parse)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{bad} (corrupt header: not a JSON object)")
    body = len(data) - 8 - header_len
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            start, end = entry["data_offsets"]
            expected = _ST_DTYPES[entry["dtype"]] * math.prod(entry["shape"])
            valid = all(isinstance(n, int) and n >= 0 for n in (start, end, *entry["shape"]))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{bad} (corrupt header entry for '{key}')") from None
        if not valid:
            raise CheckpointError(f"{bad} (corrupt header entry for '{key}')")
        if end > body:
            raise CheckpointError(
                f"{bad} (truncated data: tensor '{key}' ends at byte {end}, the data section has {body} bytes)"
            )
        if end - start != expected:
            raise CheckpointError(f"{bad} (corrupt entry '{key}': {end - start} bytes for {expected} expected)")
    return header


def _arrays(data, header: dict, copy: bool) -> dict[str, np.ndarray]:
    """The tensors of a validated safetensors buffer, as numpy arrays in
    their stored dtype (bfloat16 widened to float32). Without `copy` they
    are views of `data` (a copy-on-write memory map)."""
    body = 8 + struct.unpack("<Q", data[:8])[0]
    arrays = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        shape, (start, _) = tuple(entry["shape"]), entry["data_offsets"]
        stored = np.dtype(_ST_NUMPY[entry["dtype"]])
        count = math.prod(shape)
        array = np.frombuffer(data, stored, count=count, offset=body + start) if count else np.empty(0, stored)
        if entry["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32: exact.
            array = (array.astype(np.uint32) << 16).view(np.float32)
        elif copy or not array.flags.writeable:
            array = array.copy()
        arrays[key] = array.reshape(shape)
    return arrays


def _as_tensor(array: np.ndarray, name: str, key: str):
    """A graphc tensor of a stored array; unsigned dtypes graphc lacks
    widen to the next signed one."""
    if array.dtype in (np.uint16, np.uint32):
        array = array.astype(np.int32 if array.dtype == np.uint16 else np.int64)
    elif array.dtype == np.uint64:
        if array.size and array.max() > np.iinfo(np.int64).max:
            raise CheckpointError(f"{name}: tensor '{key}' holds uint64 values beyond graphc's int64")
        array = array.astype(np.int64)
    return graphc.from_numpy(array)


def _decode(node, arrays: dict, name: str, depth: int = 0):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or len(node) == 0:
        raise CheckpointError(f"{name} is not a valid graphc checkpoint (corrupt structure near {node!r:.60})")
    if depth > _MAX_DEPTH:
        raise CheckpointError(
            f"{name} is not a valid graphc checkpoint (corrupt structure: nested more than {_MAX_DEPTH} levels deep)"
        )
    tag = next(iter(node))
    value = node[tag]
    if tag in ("$tensor", "$ndarray"):
        if value not in arrays:
            raise CheckpointError(f"{name} is not a valid graphc checkpoint (missing tensor '{value}')")
        array = arrays[value]
        if tag == "$ndarray":
            return array
        tensor = _as_tensor(array, name, value)
        return tensor.requires_grad_(True) if node.get("requires_grad") else tensor
    if tag == "$float" and value in ("inf", "-inf", "nan"):
        return float(value)
    if tag in ("$list", "$tuple") and isinstance(value, list):
        items = [_decode(v, arrays, name, depth + 1) for v in value]
        return tuple(items) if tag == "$tuple" else items
    if tag in ("$dict", "$odict") and isinstance(value, list):
        pairs = [_decode_pair(pair, arrays, name, depth + 1) for pair in value]
        return OrderedDict(pairs) if tag == "$odict" else dict(pairs)
    if tag == "$dtype" and isinstance(getattr(graphc, str(value), None), DType):
        return getattr(graphc, value)
    if tag in ("$float", "$list", "$tuple", "$dict", "$odict", "$dtype"):
        raise CheckpointError(f"{name} is not a valid graphc checkpoint (corrupt {tag} entry {value!r:.60})")
    raise CheckpointError(f"{name} is not a valid graphc checkpoint (unknown structure tag {tag!r})")


def _decode_pair(pair, arrays: dict, name: str, depth: int) -> tuple:
    if not isinstance(pair, list) or len(pair) != 2:
        raise CheckpointError(f"{name} is not a valid graphc checkpoint (corrupt dict entry {pair!r:.60})")
    key = _decode(pair[0], arrays, name, depth)
    try:
        hash(key)
    except TypeError:
        raise CheckpointError(f"{name} is not a valid graphc checkpoint (unhashable dict key {key!r:.60})") from None
    return key, _decode(pair[1], arrays, name, depth)


def _from_buffer(data, name: str, copy: bool = True):
    header = _parse_header(data, name)
    arrays = _arrays(data, header, copy)
    metadata = header.get("__metadata__") or {}
    if _STRUCTURE_KEY not in metadata:
        # A plain safetensors file (e.g. from another library): name -> tensor.
        return OrderedDict((key, _as_tensor(array, name, key)) for key, array in arrays.items())
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{name} is not a valid graphc checkpoint (corrupt structure: {exc})") from None
    except RecursionError:
        raise CheckpointError(
            f"{name} is not a valid graphc checkpoint (corrupt structure: nested too deeply to parse)"
        ) from None
    return _decode(structure, arrays, name)


def _apply_map_location(obj, map_location):
    if map_location is None:
        return obj
    if callable(map_location) and not isinstance(map_location, (str, graphc.device)):

        def mapper(t):
            return map_location(t, "cpu")
    else:
        if isinstance(map_location, dict):
            map_location = map_location.get("cpu", "cpu")
        if graphc.device(map_location).type == "cpu":
            return obj

        def mapper(t):
            return t.to(map_location)

    return _map_tensors(obj, mapper)


def _map_tensors(obj, fn):
    if isinstance(obj, graphc.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(v, fn)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    return obj


def _check_pickle_options(name: str, weights_only, pickle_module) -> None:
    if weights_only is False:
        raise CheckpointError(
            f"graphc.load({name!r}, weights_only=False): graphc never runs code from a checkpoint, and "
            "unpickling a PyTorch checkpoint without weights_only can run arbitrary code. Load it with "
            "weights_only=True (the default); if it holds your own plain-data classes, allow them with "
            "graphc.serialization.add_safe_globals([...])"
        )
    if pickle_module is not None:
        raise CheckpointError("graphc.load: pickle_module is not supported; graphc uses its own restricted unpickler")


def _load_path(path: str, name: str, map_location, weights_only, pickle_module, mmap, pickle_args):
    with open(path, "rb") as handle:
        head = handle.read(512)
    kind = _sniff(head)
    if kind in ("zip", "pickle", "tar"):
        _check_pickle_options(name, weights_only, pickle_module)
    if kind == "zip":
        return _torch_pickle.load_zip(path, name, map_location, bool(mmap), **pickle_args)
    if kind == "pickle":
        if mmap:
            raise CheckpointError(
                f"{name}: mmap=True needs the zip format of torch.save (PyTorch >= 1.6); this is a legacy "
                "checkpoint. Load it without mmap, or re-save it with torch.save"
            )
        with open(path, "rb") as handle:
            return _torch_pickle.load_legacy(handle, name, map_location, **pickle_args)
    if kind == "tar":
        raise CheckpointError(_TAR_MESSAGE.format(name=name))
    if mmap and os.path.getsize(path) > 0:
        with open(path, "rb") as handle:
            mapped = mmap_module.mmap(handle.fileno(), 0, access=mmap_module.ACCESS_COPY)
        return _apply_map_location(_from_buffer(mapped, name, copy=False), map_location)
    with open(path, "rb") as handle:
        data = handle.read()
    return _apply_map_location(_from_buffer(data, name), map_location)


_TAR_MESSAGE = (
    "{name}: this is a tar-format checkpoint of PyTorch before 0.4, which graphc does not read; "
    "load it in PyTorch and re-save it with torch.save"
)


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Load a checkpoint from a path or a readable binary file object, like
    `torch.load`, never running code from the file.

    Reads graphc's own format (`save`), plain safetensors files (tensor
    names as keys), and PyTorch checkpoints written by `torch.save`, zip
    or legacy format; the format is told by the file's first bytes, not by
    its name. PyTorch pickles are read by a restricted unpickler that
    rebuilds only tensors, dtypes, devices and plain containers (what
    `torch.load(weights_only=True)` allows) and the globals allowed with
    `add_safe_globals`; any other global raises `CheckpointError`.

    - `map_location`: a device or device string moves every tensor; a dict
      maps saved locations (`{'cuda:1': 'cuda:0'}`); a callable
      `(tensor, location) -> tensor or None` decides per tensor (None keeps
      the default). With None, tensors saved on CUDA go to CUDA (an error
      when it is unavailable, as in PyTorch).
    - `weights_only`: True (the default, and the only mode for pickles:
      False raises CheckpointError, as graphc never runs pickled code).
    - `mmap=True` (paths only; zip and safetensors files): storages are
      memory-mapped copy-on-write instead of read into memory.
    - `encoding` (for checkpoints pickled by Python 2) is passed on to the
      unpickler.

    Raises `CheckpointError` for a file that is not a valid checkpoint and
    FileNotFoundError for a missing path.
    """
    unknown = set(pickle_load_args) - {"encoding", "errors"}
    if unknown:
        raise TypeError(f"load() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    pickle_args = {
        "encoding": pickle_load_args.get("encoding", "utf-8"),
        "errors": pickle_load_args.get("errors", "strict"),
    }
    name = _describe(f)
    if not hasattr(f, "read"):
        return _load_path(os.fspath(f), name, map_location, weights_only, pickle_module, mmap, pickle_args)
    if mmap:
        raise ValueError("graphc.load: f must be a file path in order to use the mmap argument")
    data = f.read()
    if isinstance(data, str):
        raise CheckpointError("graphc.load needs a binary file object (open the file with 'rb')")
    data = bytes(data)
    kind = _sniff(data[:512])
    if kind in ("zip", "pickle", "tar"):
        _check_pickle_options(name, weights_only, pickle_module)
    if kind == "zip":
        return _torch_pickle.load_zip(io.BytesIO(data), name, map_location, False, **pickle_args)
    if kind == "pickle":
        return _torch_pickle.load_legacy(io.BytesIO(data), name, map_location, **pickle_args)
    if kind == "tar":
        raise CheckpointError(_TAR_MESSAGE.format(name=name))
    return _apply_map_location(_from_buffer(data, name), map_location)
