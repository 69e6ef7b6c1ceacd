"""graphc: PyTorch's user API on a static-graph compiler.

`import graphc as torch` and tutorial code runs eagerly (numpy reference
semantics, define-by-run autograd). Wrap a function or module in
`graphc.compile` and it is traced into one IR graph, optimized and compiled.

The package holds every layer, imported one way (docs/internals.md):
`graphc.ir` -> `graphc.passes` -> `graphc.codegen` -> `graphc.runtime` ->
the frontend. This file therefore defines only the dtypes: the public
namespace (`graphc/_api.py`: tensors, ops, autograd, `compile`) loads on the
first attribute that needs it, so `import graphc.ir` or a compiler layer
alone does not pull in the frontend.
"""

from __future__ import annotations

import importlib
import os

from graphc.ir import dtypes as _dtypes

dtype = _dtypes.DType

float32 = float = _dtypes.float32
float64 = double = _dtypes.float64
float16 = half = _dtypes.float16
int64 = long = _dtypes.int64
int32 = int = _dtypes.int32
int16 = short = _dtypes.int16
int8 = _dtypes.int8
uint8 = _dtypes.uint8
bool = _dtypes.bool_

__version__ = "0.1.0"

_api_loaded = False


def _load_api() -> None:
    """Import the public namespace once and make its names attributes of graphc."""
    global _api_loaded
    if _api_loaded:
        return
    # A frontend module reading graphc.<name> while graphc._api is still
    # importing gets the partial namespace; only a finished import sets the flag.
    api = importlib.import_module("graphc._api")
    globals().update({k: v for k, v in vars(api).items() if not k.startswith("__")})
    _api_loaded = not getattr(api.__spec__, "_initializing", False)


def _is_submodule(name: str) -> bool:
    # A loop, not any(): the namespace's torch-like any() replaces the builtin here.
    for folder in __path__:
        path = os.path.join(folder, name)
        if os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py")):
            return True
    return False


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    if _is_submodule(name):
        # graphc.nn, and `from graphc import debug` (the import system asks
        # the package for the name first): the submodule alone. No public
        # name is also a submodule's (graphc.compile is the function; the
        # module is graphc/_compile.py), so this never hides one.
        return importlib.import_module(f"graphc.{name}")
    _load_api()
    if name in globals():
        return globals()[name]
    if name in ("celu", "hardshrink", "prelu", "selu", "threshold"):
        # torch.selu and friends: the activations of graphc.nn.functional.
        return getattr(importlib.import_module("graphc.nn.functional"), name)
    if name in ("save", "load"):
        return getattr(importlib.import_module("graphc.serialization"), name)
    if name in ("cosine_similarity", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle"):
        # torch.* aliases of these torch.nn.functional functions.
        return getattr(importlib.import_module("graphc.nn.functional"), name)
    if name == "vmap":
        # torch.vmap is torch.func.vmap.
        return importlib.import_module("graphc.func").vmap
    if name in ("set_num_threads", "get_num_threads"):
        # Threads of compiled CPU programs, like torch.set_num_threads.
        return getattr(importlib.import_module("graphc.runtime.cpu"), name)
    from graphc._missing import missing

    raise missing("torch", name, globals())


# The subsystems `dir(graphc)` lists besides the namespace (they load on use).
_SUBSYSTEMS = ("linalg", "nn", "optim", "utils", "vision", "serialization", "onnx", "hub", "profiler", "func")


def __dir__() -> list[str]:
    _load_api()
    return sorted(set(globals()) | set(_SUBSYSTEMS))
