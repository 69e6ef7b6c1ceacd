"""Reading PyTorch checkpoints (`torch.save` files) without PyTorch and
without running code from the file.

Two container formats are read:

- the zip archive `torch.save` writes since PyTorch 1.6: `<name>/data.pkl`
  holds the pickled object, `<name>/data/<key>` the raw bytes of each
  storage, `<name>/byteorder` their byte order. Records are stored
  uncompressed, so with `mmap=True` storages are memory-mapped
  (copy-on-write: writing to a tensor never changes the file);
- the legacy stream (`_use_new_zipfile_serialization=False`): a magic
  number, a protocol version and a system-info dict, each pickled, then the
  object's pickle, the list of storage keys, and each storage as an 8-byte
  element count followed by its bytes.

The pickle is read by a restricted unpickler: `find_class` hands out only
graphc's own stand-ins for what `torch.load(weights_only=True)` allows (the
tensor and parameter rebuild functions, storage and dtype names,
`torch.Size`, `torch.device`, OrderedDict and plain containers) plus the
globals the user allowed with `add_safe_globals`; anything else raises
CheckpointError naming the global before anything is called. Storages
reach the unpickler only as persistent ids, which `persistent_load` turns
into `_StorageRef`s (never callable). BUILD (setting an object's state) is
allowed only on instances of user-allowed classes, so a file cannot rewrite
shared objects such as `graphc.float32` (OrderedDicts may get attributes:
a state_dict carries its `_metadata` that way).

Each storage is one numpy array; every tensor on it is an `as_strided`
view at its storage offset with its strides (checked against the storage's
bounds first), so tensors sharing a storage share memory. dtypes graphc
lacks load as the nearest wider one: bfloat16 as float32 (exact), uint16 as
int32, uint32 as int64. Complex, float8 and quantized tensors are refused.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import mmap as mmap_module
import os
import pickle
import struct
import zipfile
import zlib
from collections import Counter, OrderedDict

import numpy as np

import graphc
from graphc.errors import CheckpointError, GraphcError
from graphc.ir.dtypes import DType

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch dtype name -> (numpy dtype of the bytes on disk, graphc dtype name it
# loads as; None: graphc has no such dtype).
_DTYPES = {
    "float64": ("f8", "float64"),
    "float32": ("f4", "float32"),
    "float16": ("f2", "float16"),
    "bfloat16": ("u2", "float32"),
    "int64": ("i8", "int64"),
    "int32": ("i4", "int32"),
    "int16": ("i2", "int16"),
    "int8": ("i1", "int8"),
    "uint8": ("u1", "uint8"),
    "bool": ("?", "bool"),
    "uint16": ("u2", "int32"),
    "uint32": ("u4", "int64"),
    "complex64": ("c8", None),
    "complex128": ("c16", None),
}
# Legacy typed-storage class names (`torch.FloatStorage`) -> torch dtype name.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}
# dtype names torch pickles that graphc can name but not load as tensors.
_OTHER_TORCH_DTYPES = (
    "complex32",
    "uint64",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "qint8",
    "qint32",
    "quint8",
    "quint4x2",
    "quint2x4",
)


# -- user-allowed globals -----------------------------------------------------

_safe_globals: dict[str, object] = {}


def _global_name(entry) -> tuple[str, object]:
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str):
        return entry[1], entry[0]
    module, qualname = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    if not module or not qualname:
        raise TypeError(
            f"add_safe_globals: {entry!r} has no __module__/__qualname__; pass (object, 'module.name') instead"
        )
    return f"{module}.{qualname}", entry


def add_safe_globals(safe_globals: list) -> None:
    """Allow these classes or functions in the PyTorch checkpoints
    `graphc.load` reads, as `torch.serialization.add_safe_globals` does.

    Each entry is an object (allowed under `module.qualname`) or a pair
    `(object, "module.name")`. Only allow types that are plain data: the
    unpickler will call them with arguments taken from the file.
    """
    for entry in safe_globals:
        name, obj = _global_name(entry)
        _safe_globals[name] = obj


def get_safe_globals() -> list:
    """The objects allowed by `add_safe_globals`, as (object, name) pairs."""
    return [(obj, name) for name, obj in _safe_globals.items()]


def clear_safe_globals() -> None:
    """Forget every global allowed by `add_safe_globals`."""
    _safe_globals.clear()


class safe_globals(contextlib.ContextDecorator):  # noqa: N801 (torch's name)
    """Context manager (and decorator) allowing globals only within its
    block: `with graphc.serialization.safe_globals([MyConfig]): graphc.load(f)`."""

    def __init__(self, safe_globals: list):
        self._entries = [_global_name(entry) for entry in safe_globals]
        self._saved: list[dict] = []

    def __enter__(self):
        self._saved.append(dict(_safe_globals))
        _safe_globals.update(self._entries)
        return self

    def __exit__(self, *exc):
        _safe_globals.clear()
        _safe_globals.update(self._saved.pop())
        return False


# -- stand-ins for the torch objects a checkpoint names -----------------------


class _StorageType:
    """What `torch.FloatStorage` (or `torch.UntypedStorage`: dtype None)
    unpickles to: only a dtype name."""

    def __init__(self, dtype: str | None, name: str):
        self.dtype, self.name = dtype, name

    def __repr__(self) -> str:
        return f"<torch storage type {self.name}>"


class _TorchDType:
    """A torch dtype graphc has no tensor dtype for (bfloat16, complex64 ...)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __eq__(self, other) -> bool:
        return isinstance(other, _TorchDType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("torch dtype", self.name))


class _TensorType:
    """`torch.Tensor` / `torch.nn.Parameter` as named by `_rebuild_from_type_v2`."""

    def __init__(self, parameter: bool):
        self.parameter = parameter


class _Storage:
    """One storage of the file: its raw bytes (little- or big-endian as
    saved), filled at once (zip) or after the object's pickle (legacy).
    Typed 1-D arrays of it are made once per dtype and shared by every
    tensor on the storage."""

    def __init__(self, key: str, raw: np.ndarray, itemsize: int, big_endian: bool, filled: bool):
        self.key, self.raw, self.itemsize = key, raw, itemsize
        self.big_endian, self.filled = big_endian, filled
        self._typed: dict[str, np.ndarray] = {}

    def typed(self, dtype: str) -> np.ndarray:
        if dtype not in self._typed:
            disk, target = _DTYPES[dtype]
            count = self.raw.size // np.dtype(disk).itemsize
            if disk == np.dtype(target).str[1:] and not self.big_endian:
                # Same layout as graphc's: a view of the bytes, no copy.
                self._typed[dtype] = self.raw[: count * np.dtype(disk).itemsize].view(disk)
            else:
                self._typed[dtype] = np.empty(count, np.dtype(target))
                if self.filled:
                    self._convert(dtype)
        return self._typed[dtype]

    def fill(self) -> None:
        """The raw bytes have arrived: compute the converted arrays."""
        self.filled = True
        for dtype, array in self._typed.items():
            if array.base is None:
                self._convert(dtype)

    def _convert(self, dtype: str) -> None:
        disk, _ = _DTYPES[dtype]
        out = self._typed[dtype]
        source = self.raw[: out.size * np.dtype(disk).itemsize].view(
            np.dtype(disk).newbyteorder(">" if self.big_endian else "<")
        )
        if dtype == "bfloat16":
            # bfloat16 is the upper half of a float32: exact.
            out.view(np.uint32)[...] = source.astype(np.uint32) << 16
        else:
            out[...] = source


class _StorageRef:
    """A persistent id resolved: a storage read as `dtype` (None: untyped),
    for legacy storage views only the window [start, start + count)."""

    def __init__(self, storage: _Storage, dtype: str | None, location: str, start: int = 0, count: int | None = None):
        self.storage, self.dtype, self.location = storage, dtype, location
        self.start, self.count = start, count


# -- the loader ---------------------------------------------------------------


class _Loader:
    """State of one `load` call: where storages come from and how tensors
    are placed."""

    def __init__(self, name: str, map_location, encoding: str, errors: str):
        self.name = name
        self.map_location = map_location
        self.encoding, self.errors = encoding, errors
        self.storages: dict[str, _Storage] = {}
        self.big_endian = False
        self._globals = self._allowed_globals()

    # errors

    def corrupt(self, detail: str):
        return CheckpointError(f"{self.name} is not a valid graphc checkpoint (PyTorch checkpoint: {detail})")

    def unsupported(self, detail: str):
        return CheckpointError(f"{self.name}: cannot load this PyTorch checkpoint: {detail}")

    # unpickling

    def unpickle(self, file):
        loader = self

        class Unpickler(_CheckedUnpickler):
            def find_class(self, module, name):
                return loader.find_global(module, name)

            def persistent_load(self, pid):
                return loader.persistent_load(pid)

            def check_build(self, inst):
                loader.check_build(inst)

        try:
            return Unpickler(file, encoding=self.encoding, errors=self.errors).load()
        except GraphcError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise self.corrupt(f"corrupt pickle: {type(exc).__name__}: {exc}") from None
        except (struct.error, OverflowError, RecursionError, MemoryError, UnicodeError) as exc:
            raise self.corrupt(f"corrupt pickle: {type(exc).__name__}: {exc}") from None

    def _allowed_globals(self) -> dict[str, object]:
        allowed: dict[str, object] = {
            "collections.OrderedDict": OrderedDict,
            "collections.Counter": Counter,
            "builtins.set": set,
            "builtins.frozenset": frozenset,
            "builtins.bytearray": bytearray,
            "builtins.complex": complex,
            "_codecs.encode": _encode_bytes,
            "torch.Size": graphc.Size,
            "torch.device": _device,
            "torch.Tensor": _TensorType(parameter=False),
            "torch.nn.parameter.Parameter": _TensorType(parameter=True),
            "torch._utils._rebuild_tensor": self.rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": self.rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": self.rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": self.rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": self.rebuild_parameter_with_state,
            "torch._tensor._rebuild_from_type_v2": self.rebuild_from_type_v2,
            "torch.storage.UntypedStorage": _StorageType(None, "UntypedStorage"),
            "torch.UntypedStorage": _StorageType(None, "UntypedStorage"),
        }
        for storage_name, dtype in _STORAGE_DTYPES.items():
            allowed[f"torch.{storage_name}"] = _StorageType(dtype, storage_name)
        for dtype in (*_DTYPES, *_OTHER_TORCH_DTYPES):
            own = getattr(graphc, dtype, None)
            allowed[f"torch.{dtype}"] = own if isinstance(own, DType) else _TorchDType(dtype)
        return allowed

    def find_global(self, module: str, name: str):
        full = f"{module}.{name}"
        if full in _safe_globals:
            return _safe_globals[full]
        if full.startswith("__builtin__."):  # Python 2 pickles
            full = "builtins." + name
        if full in self._globals:
            return self._globals[full]
        if module == "torch" or module.startswith("torch."):
            raise CheckpointError(
                f"{self.name}: the checkpoint refers to '{full}', a PyTorch object graphc cannot rebuild "
                "(sparse, quantized, nested or subclassed tensors, TorchScript or other torch classes); "
                "save plain dense tensors (e.g. t.to_dense()) and a state_dict instead"
            )
        raise CheckpointError(
            f"{self.name}: the checkpoint refers to the global '{full}', which graphc does not load. "
            "graphc never runs code from a checkpoint: it rebuilds only tensors, dtypes, devices and plain "
            "containers (what torch.load(weights_only=True) allows). If you trust this file and the object is "
            f"plain data, allow it with graphc.serialization.add_safe_globals([{name}])"
        )

    def check_build(self, inst) -> None:
        # BUILD sets attributes of the object below it on the stack; on
        # anything but an instance of a user-allowed class that could
        # rewrite a shared object (graphc.float32, a class). A state_dict
        # is an OrderedDict with a `_metadata` attribute set this way.
        allowed = (OrderedDict, *(obj for obj in _safe_globals.values() if isinstance(obj, type)))
        if type(inst) not in allowed:
            raise CheckpointError(
                f"{self.name}: the checkpoint sets the state of a {type(inst).__name__} object, which graphc "
                "does not allow (only instances of classes allowed with graphc.serialization.add_safe_globals)"
            )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise self.corrupt(f"unknown persistent id {pid!r:.80}")
        storage_type, key, location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise self.unsupported(f"storage type {storage_type!r:.60} (quantized or unknown storage)")
        if not (isinstance(key, str) and isinstance(location, str) and isinstance(numel, int) and numel >= 0):
            raise self.corrupt(f"malformed storage id {pid!r:.80}")
        itemsize = 1 if storage_type.dtype is None else np.dtype(_DTYPES[storage_type.dtype][0]).itemsize
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = self.open_storage(key, numel * itemsize, itemsize)
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _StorageRef(storage, storage_type.dtype, location)
        # Legacy storage views (PyTorch < 1.0): (view_key, offset, size).
        if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])):
            raise self.corrupt(f"malformed storage view {view!r:.80}")
        return _StorageRef(storage, storage_type.dtype, location, start=view[1], count=view[2])

    def open_storage(self, key: str, nbytes: int, itemsize: int) -> _Storage:
        raise NotImplementedError

    # tensors

    def rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._tensor(storage, storage_offset, size, stride, None, False)

    def rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
        self._check_metadata(metadata)
        return self._tensor(storage, storage_offset, size, stride, None, requires_grad)

    def rebuild_tensor_v3(
        self, storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
    ):
        self._check_metadata(metadata)
        name = getattr(dtype, "name", None)
        if name not in _DTYPES and name not in _OTHER_TORCH_DTYPES:
            raise self.corrupt(f"tensor dtype {dtype!r:.40}")
        return self._tensor(storage, storage_offset, size, stride, name, requires_grad)

    def rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, graphc.Tensor):
            raise self.corrupt(f"parameter data of type {type(data).__name__}")
        return graphc.nn.Parameter(data, bool(requires_grad))

    def rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        # Python attributes set on the parameter are not restored.
        return self.rebuild_parameter(data, requires_grad, backward_hooks)

    def rebuild_from_type_v2(self, func, new_type, args, state):
        rebuilders = (self.rebuild_tensor, self.rebuild_tensor_v2, self.rebuild_tensor_v3, self.rebuild_parameter)
        if func not in rebuilders or not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
            raise self.unsupported(f"tensor subclass {new_type!r:.60} rebuilt by {func!r:.60}")
        tensor = func(*args)
        if new_type.parameter and not isinstance(tensor, graphc.nn.Parameter):
            tensor = graphc.nn.Parameter(tensor, tensor.requires_grad)
        return tensor

    def _check_metadata(self, metadata) -> None:
        if metadata and any(metadata.values()):
            raise self.unsupported(f"tensor with lazy conjugate/negative bits {metadata!r:.60}")

    def _tensor(self, ref, offset, size, stride, dtype, requires_grad):
        if not isinstance(ref, _StorageRef):
            raise self.corrupt(f"tensor storage of type {type(ref).__name__}")
        dtype = dtype or ref.dtype
        if dtype is None:
            raise self.corrupt("untyped storage without a tensor dtype")
        if dtype not in _DTYPES or _DTYPES[dtype][1] is None:
            raise self.unsupported(f"graphc has no {dtype} dtype (tensor on storage '{ref.storage.key}')")
        if not (isinstance(offset, int) and _int_tuple(size) and _int_tuple(stride) and len(size) == len(stride)):
            raise self.corrupt(f"tensor geometry offset={offset!r:.40} size={size!r:.60} stride={stride!r:.60}")
        flat = ref.storage.typed(dtype)
        if ref.count is not None:
            # A legacy storage view: element window of its root storage.
            if ref.start < 0 or ref.count < 0 or ref.start + ref.count > flat.size:
                raise self.corrupt(f"storage view [{ref.start}, +{ref.count}) outside storage '{ref.storage.key}'")
            flat = flat[ref.start : ref.start + ref.count]
        numel = 1
        for n in size:
            numel *= n
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if offset < 0 or min(size, default=0) < 0 or min(stride, default=0) < 0 or offset > flat.size:
            raise self.corrupt(f"tensor geometry offset={offset} size={size} stride={stride}")
        if numel > 0 and last >= flat.size:
            raise self.corrupt(
                f"tensor of size {list(size)}, stride {list(stride)} at offset {offset} reads past the end of "
                f"storage '{ref.storage.key}' ({flat.size} elements)"
            )
        item = flat.itemsize
        array = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=tuple(size), strides=tuple(s * item for s in stride), writeable=flat.flags.writeable
        )
        tensor = self._place(graphc.from_numpy(array), ref.location)
        if requires_grad and tensor.dtype.is_float:
            tensor.requires_grad_(True)
        return tensor

    def _place(self, tensor, location: str):
        """torch.load's map_location, per tensor: None keeps the saved
        device, a device moves every tensor, a dict renames locations, a
        callable (tensor, location) may return the tensor to use."""
        target = self.map_location
        if callable(target) and not isinstance(target, (str, graphc.device)):
            result = target(tensor, location)
            if result is not None:
                return result
            target = None
        elif isinstance(target, dict):
            target = target.get(location, location)
        target = location if target is None else target
        try:
            device = graphc.device(target)
        except Exception:
            raise self.unsupported(
                f"tensor saved on device '{target}', which graphc does not have; pass map_location='cpu'"
            ) from None
        if device.type == "cpu":
            return tensor
        if device.type == "cuda" and not graphc.cuda.is_available():
            raise CheckpointError(
                f"{self.name}: attempting to deserialize a tensor on a CUDA device but graphc.cuda.is_available() "
                "is False. If you are running on a CPU-only machine, please use graphc.load with "
                "map_location='cpu' to map your storages to the CPU."
            )
        return tensor.to(device)


class _CheckedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with a hook on BUILD, the one opcode that
    changes an existing object without calling a global; the C unpickler
    (`pickle.Unpickler`) offers no such hook. Checkpoint pickles hold only
    the structure around the tensors' bytes, so its speed does not matter."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def check_build(self, inst) -> None:
        raise NotImplementedError

    def _load_build(self):
        self.check_build(self.stack[-2])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build  # type: ignore[assignment]


def _int_tuple(value) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _encode_bytes(text, encoding="utf-8"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise TypeError(f"_codecs.encode({text!r:.40}, {encoding!r:.20}) is not a bytes literal")
    return codecs.encode(text, encoding)


def _device(*args):
    try:
        return graphc.device(*args)
    except Exception:
        # A device graphc does not have (mps, xla): keep its name.
        return ":".join(str(a) for a in args)


# -- zip archives ---------------------------------------------------------------


class _ZipLoader(_Loader):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, mapped, **kwargs):
        super().__init__(**kwargs)
        self.archive, self.prefix, self.mapped = archive, prefix, mapped

    def open_storage(self, key: str, nbytes: int, itemsize: int) -> _Storage:
        record = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(record)
        except KeyError:
            raise self.corrupt(f"missing storage record '{record}'") from None
        if info.file_size < nbytes:
            raise self.corrupt(f"storage record '{record}' has {info.file_size} bytes, {nbytes} needed")
        if self.mapped is not None and info.compress_type == zipfile.ZIP_STORED:
            start = _zip_data_offset(self.mapped, info)
            if start is None or start + nbytes > len(self.mapped):
                raise self.corrupt(f"storage record '{record}' lies outside the file (truncated?)")
            raw = np.frombuffer(self.mapped, np.uint8, count=nbytes, offset=start)
        else:
            raw = np.empty(nbytes, np.uint8)
            with self.archive.open(info) as handle:
                got = handle.readinto(raw.data) if nbytes else 0  # type: ignore[attr-defined]
            if got != nbytes:
                raise self.corrupt(f"storage record '{record}' is truncated")
        return _Storage(key, raw, itemsize, self.big_endian, filled=True)


def _zip_data_offset(mapped, info: zipfile.ZipInfo) -> int | None:
    """Offset of a stored record's bytes: after its local header, whose
    name and extra field lengths may differ from the central directory's."""
    header = bytes(mapped[info.header_offset : info.header_offset + 30])
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def load_zip(source, name: str, map_location, mmap: bool, encoding: str = "utf-8", errors: str = "strict"):
    """Load a `torch.save` zip archive from a path or a binary file object."""
    error = CheckpointError
    mapped = None
    try:
        if mmap:
            with open(os.fspath(source), "rb") as handle:
                mapped = mmap_module.mmap(handle.fileno(), 0, access=mmap_module.ACCESS_COPY)
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise error(f"{name} is not a valid graphc checkpoint (corrupt zip archive: {exc})") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
        if any(n.endswith("constants.pkl") for n in names):
            raise error(
                f"{name}: this is a TorchScript archive (torch.jit.save), which holds code; graphc loads "
                "only checkpoints. In PyTorch, save the module's state_dict with torch.save instead"
            )
        if len(pickles) != 1:
            raise error(f"{name} is not a valid graphc checkpoint (no data.pkl record: not a torch.save archive)")
        prefix = pickles[0][: -len("data.pkl")]
        loader = _ZipLoader(
            archive, prefix, mapped, name=name, map_location=map_location, encoding=encoding, errors=errors
        )
        try:
            if f"{prefix}byteorder" in names:
                order = archive.read(f"{prefix}byteorder").decode("ascii", "replace")
                if order not in ("little", "big"):
                    raise loader.corrupt(f"unknown byte order {order!r:.20}")
                loader.big_endian = order == "big"
            data = archive.read(pickles[0])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise loader.corrupt(f"corrupt zip archive: {exc}") from None
        try:
            return loader.unpickle(io.BytesIO(data))
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise loader.corrupt(f"corrupt zip archive: {exc}") from None


# -- the legacy stream ------------------------------------------------------------


class _LegacyLoader(_Loader):
    def open_storage(self, key: str, nbytes: int, itemsize: int) -> _Storage:
        # The bytes follow the object's pickle; they are read into this
        # buffer (and converted) once the pickle is done.
        return _Storage(key, np.empty(nbytes, np.uint8), itemsize, self.big_endian, filled=False)


def load_legacy(file, name: str, map_location, encoding: str = "utf-8", errors: str = "strict"):
    """Load a legacy (non-zip) `torch.save` stream from a binary file object."""
    loader = _LegacyLoader(name=name, map_location=map_location, encoding=encoding, errors=errors)
    magic = loader.unpickle(file)
    if magic != LEGACY_MAGIC:
        raise CheckpointError(
            f"{name} is not a valid graphc checkpoint (a pickle, but not one torch.save wrote: "
            "graphc reads only PyTorch checkpoints and safetensors files)"
        )
    protocol = loader.unpickle(file)
    if protocol != LEGACY_PROTOCOL:
        raise loader.unsupported(f"legacy protocol version {protocol!r:.20} (expected {LEGACY_PROTOCOL})")
    sys_info = loader.unpickle(file)
    if not isinstance(sys_info, dict):
        raise loader.corrupt("system info is not a dict")
    loader.big_endian = not sys_info.get("little_endian", True)
    result = loader.unpickle(file)
    keys = loader.unpickle(file)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise loader.corrupt("storage key list is malformed")
    for key in keys:
        storage = loader.storages.get(key)
        if storage is None:
            raise loader.corrupt(f"data for storage '{key}' that no tensor uses")
        header = file.read(8)
        if len(header) != 8:
            raise loader.corrupt(f"truncated before storage '{key}'")
        (count,) = struct.unpack(">q" if loader.big_endian else "<q", header)
        nbytes = storage.raw.size
        if count * storage.itemsize != nbytes:
            raise loader.corrupt(f"storage '{key}' holds {count} elements, {nbytes} bytes expected")
        got = file.readinto(storage.raw.data) if nbytes else 0
        if got != nbytes:
            raise loader.corrupt(f"storage '{key}' is truncated ({got} of {nbytes} bytes)")
        storage.fill()
    missing = [key for key, storage in loader.storages.items() if not storage.filled]
    if missing:
        raise loader.corrupt(f"no data for storage(s) {', '.join(missing[:5])}")
    return result


__all__ = ["add_safe_globals", "clear_safe_globals", "get_safe_globals", "load_legacy", "load_zip", "safe_globals"]
