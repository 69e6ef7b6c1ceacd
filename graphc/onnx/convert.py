"""IR graph -> ONNX nodes: one converter per primitive, keyed by `Op`.

`Converter` walks a traced graph in order and appends ONNX nodes and
initializers. Most primitives map to one ONNX op. A few choices keep the
result close to what a person would write:

- EXPAND feeding an elementwise op or a matmul is dropped where ONNX's own
  broadcasting gives the same shape; other EXPANDs become `Expand`.
- RESHAPE, EXPAND and UNFOLD are emitted lazily, on first use, and chains of
  reshapes collapse into one `Reshape`: each value may have a *view*, an
  ONNX value holding the same elements in row-major order under another
  shape.
- Patterns of several primitives that one ONNX op expresses are matched
  first (`PATTERNS`): convolution (unfold, then a matmul with a reshaped
  4-D weight, as graphc.nn.functional.conv2d builds it; plus its bias)
  becomes `Conv`, max pooling `MaxPool`, relu's `where` `Relu`. A matched
  node pulls in only the pattern's inputs. Any other UNFOLD is built from
  strided `Slice`s, FOLD from `Pad`s and `Add`s.
- With constant folding, subgraphs that depend on no input or parameter are
  evaluated with the reference implementations and stored as initializers.

Sizes that depend on a dynamic axis (Polys, see symbolic.py) are computed at
run time from the `Shape` of the inputs.
"""

from __future__ import annotations

import functools

import numpy as np

from graphc.ir import dtypes
from graphc.ir.graph import Graph, Node
from graphc.ir.ops import Op
from graphc.ir.rules import evaluate, window_out_size
from graphc.onnx.symbolic import ARANGE, ExportError, Poly, SymbolicShapes, is_static

# Element types ONNX Runtime's CPU kernels lack for arithmetic, comparison
# and reductions: computed in int32 and cast back (exact: the IR wraps too).
_NARROW = (dtypes.uint8, dtypes.int8, dtypes.int16)

_ELEMENTWISE = {
    Op.NEG: "Neg",
    Op.RECIP: "Reciprocal",
    Op.EXP: "Exp",
    Op.LOG: "Log",
    Op.SQRT: "Sqrt",
    Op.SIN: "Sin",
    Op.COS: "Cos",
    Op.TANH: "Tanh",
    Op.ERF: "Erf",
    Op.FLOOR: "Floor",
    Op.NOT: "Not",
    Op.ADD: "Add",
    Op.SUB: "Sub",
    Op.MUL: "Mul",
    Op.DIV: "Div",
    Op.POW: "Pow",
    Op.MAX: "Max",
    Op.MIN: "Min",
    Op.CMPLT: "Less",
    Op.CMPEQ: "Equal",
    Op.AND: "And",
    Op.OR: "Or",
    Op.WHERE: "Where",
}
_REDUCE = {Op.SUM: "ReduceSum", Op.REDUCE_MAX: "ReduceMax", Op.PROD: "ReduceProd"}
# Emitted on first use (see the module doc).
_LAZY = (Op.RESHAPE, Op.EXPAND, Op.UNFOLD)


def onnx_dtype(onnx, dtype) -> int:
    """The TensorProto element type of a graphc dtype."""
    tp = onnx.TensorProto
    table = {
        dtypes.bool_: tp.BOOL,
        dtypes.uint8: tp.UINT8,
        dtypes.int8: tp.INT8,
        dtypes.int16: tp.INT16,
        dtypes.int32: tp.INT32,
        dtypes.int64: tp.INT64,
        dtypes.float16: tp.FLOAT16,
        dtypes.float32: tp.FLOAT,
        dtypes.float64: tp.DOUBLE,
    }
    return table[dtype]


class Converter:
    """Builds the ONNX nodes and initializers of one graph.

    `names` maps the graph's INPUT nodes to their ONNX names (graph inputs
    or initializers the caller adds); `dim_sources` maps each dynamic size
    name to (ONNX input name, axis) where it can be read at run time."""

    def __init__(self, onnx, graph: Graph, sym: SymbolicShapes, opset: int, names: dict, dim_sources: dict, fold: bool):
        self.onnx = onnx
        self.graph = graph
        self.sym = sym
        self.opset = opset
        self.names: dict[Node, str] = dict(names)
        self.dim_sources = dim_sources
        self.nodes: list = []
        self.initializers: list = []
        self.used = set(self.names.values())
        self._views: dict = {}
        self._consts: dict = {}
        self._dims: dict = {}
        self._folded = self._fold(fold)
        self._patterns: dict = {}
        for n in graph.nodes:
            match = PATTERNS.get(n.op)
            found = match(self, n) if match is not None and n not in self._folded else None
            if found is not None:
                self._patterns[n] = found

    # -- naming and emitting ----------------------------------------------

    def fresh(self, hint: str) -> str:
        k = len(self.used)
        name = f"{hint}_{k}"
        while name in self.used:
            k += 1
            name = f"{hint}_{k}"
        self.used.add(name)
        return name

    def emit(self, op_type: str, inputs: list, **attrs) -> str:
        out = self.fresh(op_type)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=f"/{out}", **attrs))
        return out

    def initializer(self, array: np.ndarray, hint: str = "const") -> str:
        array = np.ascontiguousarray(array)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    def i64(self, values) -> str:
        return self.initializer(np.array(list(values), dtype=np.int64))

    def cast(self, value: str, dtype) -> str:
        return self.emit("Cast", [value], to=onnx_dtype(self.onnx, dtype))

    # -- run-time sizes -----------------------------------------------------

    def dim(self, size) -> str:
        """A 1-element int64 tensor holding `size` (an int or a Poly)."""
        if not isinstance(size, Poly):
            return self.i64([size])
        if size in self._dims:
            return self._dims[size]
        total = None
        for mono, coef in size.terms.items():
            term = None
            for name in mono:
                src, axis = self.dim_sources[name]
                key = ("shape", src, axis)
                if key not in self._dims:
                    shape = self._dims.get(("shape", src))
                    if shape is None:
                        shape = self._dims[("shape", src)] = self.emit("Shape", [src])
                    self._dims[key] = self.emit("Gather", [shape, self.i64([axis])], axis=0)
                factor = self._dims[key]
                term = factor if term is None else self.emit("Mul", [term, factor])
            if term is None:
                term = self.i64([coef])
            elif coef != 1:
                term = self.emit("Mul", [term, self.i64([coef])])
            total = term if total is None else self.emit("Add", [total, term])
        self._dims[size] = total
        return total

    def ints(self, values) -> str:
        """A 1-D int64 tensor of `values` (ints and Polys)."""
        values = list(values)
        if is_static(tuple(values)):
            return self.i64(values)
        pieces, run = [], []
        for v in values:
            if isinstance(v, Poly):
                if run:
                    pieces.append(self.i64(run))
                    run = []
                pieces.append(self.dim(v))
            else:
                run.append(v)
        if run:
            pieces.append(self.i64(run))
        return self.emit("Concat", pieces, axis=0)

    def reshape(self, value: str, old: tuple, new: tuple) -> str:
        """Reshape `value` of (symbolic) shape `old` to `new`."""
        if tuple(old) == tuple(new):
            return value
        if is_static(tuple(new)):
            zero = 0 in new
            attrs = {"allowzero": 1} if zero and self.opset >= 14 else {}
            return self.emit("Reshape", [value, self.i64(new)], **attrs)
        # Symbolic dims: copy a dim from the input where it is the same (0),
        # let Reshape infer one (-1), compute the rest from Shape.
        spec: list = []
        inferred = False
        for i, d in enumerate(new):
            if not isinstance(d, Poly):
                spec.append(d)
            elif i < len(old) and old[i] == d and 0 not in new:
                spec.append(0)
            elif not inferred:
                spec.append(-1)
                inferred = True
            else:
                spec.append(d)
        return self.emit("Reshape", [value, self.ints(spec)])

    # -- values ---------------------------------------------------------------

    def value(self, n: Node) -> str:
        """The ONNX name of node `n`'s value, emitting lazy nodes on demand."""
        name = self.names.get(n)
        if name is not None:
            return name
        if n in self._folded:
            if n.op is Op.EXPAND:
                name = self._expand(n)
            else:
                hint = "const" if n.op is Op.CONST else "folded"
                name = self.initializer(self._folded[n], hint)
        elif n.op is Op.EXPAND:
            name = self._expand(n)
        else:
            name, shape = self.view(n)
            name = self.reshape(name, shape, self.sym.shape(n))
        self.names[n] = name
        return name

    def view(self, n: Node) -> tuple:
        """(name, symbolic shape) of some value with `n`'s elements in
        row-major order: skips reshapes and uses a converter's native layout."""
        if n in self.names or n in self._folded:
            return self.value(n), self.sym.shape(n)
        if n.op is Op.RESHAPE:
            return self.view(n.srcs[0])
        if n not in self._views:
            if n in self._patterns:
                self._views[n] = self._patterns[n][1]()
            elif n.op is Op.UNFOLD:
                self._views[n] = _unfold(self, n)
            else:
                return self.value(n), self.sym.shape(n)
        return self._views[n]

    def _expand(self, n: Node) -> str:
        src = n.srcs[0]
        old, new = self.sym.shape(src), self.sym.shape(n)
        lead = len(new) - len(old)
        # Expand broadcasts both ways: a 1 keeps the operand's own size.
        target = [1 if i >= lead and old[i - lead] == d and isinstance(d, Poly) else d for i, d in enumerate(new)]
        return self.emit("Expand", [self.value(src), self.ints(target)])

    def _fold(self, enabled: bool) -> dict:
        """Values of the nodes that depend on no input, by the reference
        implementation (CONST and IOTA always; other ops when folding)."""
        folded: dict = {}
        for n in self.graph.nodes:
            if not self.sym.static_node(n) or n.op in (Op.INPUT, Op.RANDOM):
                continue
            if n.op in (Op.CONST, Op.IOTA) or (enabled and n.srcs and all(s in folded for s in n.srcs)):
                folded[n] = np.asarray(evaluate(n.op, [folded[s] for s in n.srcs], n.attrs))
        return folded

    def operands(self, n: Node, srcs=None) -> list:
        """`n`'s operands with EXPANDs dropped where ONNX broadcasting
        rebuilds `n`'s shape (elementwise ops and matmul batch dims)."""
        srcs = list(n.srcs if srcs is None else srcs)
        out = [s.srcs[0] if s.op is Op.EXPAND else s for s in srcs]
        if n.op is Op.DOT:
            for i, (s, o) in enumerate(zip(srcs, out)):
                if s is not o and s.shape[-2:] != o.shape[-2:]:
                    out[i] = s
            shapes = [o.shape[:-2] for o in out]
            want = n.shape[:-2]
        else:
            shapes = [o.shape for o in out]
            want = n.shape
        if tuple(np.broadcast_shapes(*shapes)) != tuple(want):
            for i, s in enumerate(srcs):
                if s is not out[i]:
                    out[i] = s
                    break
        return out

    # -- the walk -------------------------------------------------------------

    def _needed(self) -> set:
        """The nodes the outputs need, where a matched pattern needs only
        its own inputs (the conv's input and weight, not the unfold)."""
        needed: set = set()
        stack = list(self.graph.outputs)
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            if n in self._patterns:
                stack.extend(self._patterns[n][0])
            elif n not in self._folded or n.op is Op.EXPAND:
                stack.extend(n.srcs)
        return needed

    def run(self) -> list:
        """Convert every needed node; returns the ONNX names of the outputs."""
        needed = self._needed()
        for n in self.graph.nodes:
            if n not in needed or n in self.names or n in self._folded or n.op in _LAZY or n in self._patterns:
                continue
            convert = CONVERTERS.get(n.op)
            if convert is None:
                raise ExportError(f"graphc.onnx.export: the IR op {n.op.value!r} has no ONNX conversion")
            self.names[n] = convert(self, n)
        return [self.value(o) for o in self.graph.outputs]


# ---------------------------------------------------------------------------
# converters: (converter, node) -> the ONNX name of the node's value


def _elementwise(cv: Converter, n: Node) -> str:
    op_type = _ELEMENTWISE[n.op]
    srcs = cv.operands(n)
    data = srcs[1:] if n.op is Op.WHERE else srcs
    dtype = data[0].dtype
    widen = n.op not in (Op.NOT, Op.AND, Op.OR) and (dtype in _NARROW or (dtype.is_bool and n.op is Op.CMPLT))
    names = [cv.value(s) for s in srcs]
    if widen:
        first = 1 if n.op is Op.WHERE else 0
        names = names[:first] + [cv.cast(v, dtypes.int32) for v in names[first:]]
    out = cv.emit(op_type, names)
    if widen and not n.dtype.is_bool:
        out = cv.cast(out, n.dtype)
    return out


def _cast(cv: Converter, n: Node) -> str:
    return cv.cast(cv.value(n.srcs[0]), n.attrs["dtype"])


def _reduce(cv: Converter, n: Node) -> str:
    (src,) = n.srcs
    axes = list(cv.sym.attr(n, "axes"))
    x = cv.value(src)
    if not axes:
        return x
    widen = src.dtype in _NARROW or src.dtype.is_bool
    if widen:
        x = cv.cast(x, dtypes.int32)
    op_type = _REDUCE[n.op]
    if op_type == "ReduceSum" or cv.opset >= 18:
        out = cv.emit(op_type, [x, cv.i64(axes)], keepdims=0)
    else:
        out = cv.emit(op_type, [x], axes=axes, keepdims=0)
    return cv.cast(out, n.dtype) if widen else out


def _argmax(cv: Converter, n: Node) -> str:
    (src,) = n.srcs
    x = cv.value(src)
    if src.dtype in _NARROW or src.dtype.is_bool:
        x = cv.cast(x, dtypes.int32)
    return cv.emit("ArgMax", [x], axis=n.attrs["axis"], keepdims=0)


def _atan2(cv: Converter, n: Node) -> str:
    # ONNX has Atan but no Atan2: atan(y / x) moved to the right quadrant.
    y_node, x_node = n.srcs
    y, x = cv.value(y_node), cv.value(x_node)
    npt = x_node.dtype.np

    def c(v):
        return cv.initializer(np.array(v, dtype=npt))

    zero, pi = c(0.0), c(np.pi)
    base = cv.emit("Atan", [cv.emit("Div", [y, x])])
    left = cv.emit("Where", [cv.emit("Less", [y, zero]), cv.emit("Sub", [base, pi]), cv.emit("Add", [base, pi])])
    vertical = cv.emit(
        "Where",
        [
            cv.emit("Greater", [y, zero]),
            c(np.pi / 2),
            cv.emit("Where", [cv.emit("Less", [y, zero]), c(-np.pi / 2), zero]),
        ],
    )
    off_axis = cv.emit("Where", [cv.emit("Less", [x, zero]), left, vertical])
    return cv.emit("Where", [cv.emit("Greater", [x, zero]), base, off_axis])


def _argsort(cv: Converter, n: Node) -> str:
    # TopK over the whole axis is a full sort; ONNX puts equal elements in
    # index order, so it is stable like ARGSORT.
    (src,) = n.srcs
    x = cv.value(src)
    if src.dtype in _NARROW or src.dtype.is_bool:
        x = cv.cast(x, dtypes.int32)
    axis = n.attrs["axis"]
    k = cv.dim(cv.sym.shape(src)[axis])
    values, indices = cv.fresh("TopK_values"), cv.fresh("TopK")
    node = cv.onnx.helper.make_node(
        "TopK", [x, k], [values, indices], name=f"/{indices}", axis=axis, largest=int(n.attrs["descending"]), sorted=1
    )
    cv.nodes.append(node)
    return indices


def _permute(cv: Converter, n: Node) -> str:
    return cv.emit("Transpose", [cv.value(n.srcs[0])], perm=list(n.attrs["perm"]))


def _slice(cv: Converter, n: Node) -> str:
    (src,) = n.srcs
    shape = cv.sym.shape(src)
    starts, stops, steps = (cv.sym.attr(n, k) for k in ("starts", "stops", "steps"))
    if not is_static(tuple(steps)):
        raise ExportError(f"graphc.onnx.export: slice steps {steps} depend on a dynamic size")
    axes = [i for i, (b, e, s, d) in enumerate(zip(starts, stops, steps, shape)) if (b, e, s) != (0, d, 1)]
    x = cv.value(src)
    if not axes:
        return x
    begin, end = cv.ints(starts[a] for a in axes), cv.ints(stops[a] for a in axes)
    return cv.emit("Slice", [x, begin, end, cv.i64(axes), cv.i64(steps[a] for a in axes)])


def _pad(cv: Converter, n: Node) -> str:
    (src,) = n.srcs
    pads = cv.sym.attr(n, "pads")
    x = cv.value(src)
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    value = cv.initializer(np.array(n.attrs["value"], dtype=n.dtype.np))
    return cv.emit("Pad", [x, cv.ints([lo for lo, _ in pads] + [hi for _, hi in pads]), value], mode="constant")


def _concat(cv: Converter, n: Node) -> str:
    return cv.emit("Concat", [cv.value(s) for s in n.srcs], axis=n.attrs["axis"])


def _dot(cv: Converter, n: Node) -> str:
    # Convolutions were matched as a pattern (_match_conv); this is a matmul.
    a, b = cv.operands(n)
    dtype = a.dtype
    names = [cv.value(a), cv.value(b)]
    if dtype in _NARROW:
        names = [cv.cast(v, dtypes.int32) for v in names]
        return cv.cast(cv.emit("MatMul", names), dtype)
    return cv.emit("MatMul", names)


def _window(attrs) -> tuple:
    def pair(v):
        return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))

    return tuple(pair(attrs[k]) for k in ("kernel", "stride", "padding", "dilation"))


def _match_conv(cv: Converter, n: Node):
    """`Conv` for dot(weight.reshape(O, -1) [expanded], unfold(x)) and its
    grouped form: (inputs, build) with build() -> the conv's (name, shape);
    or None."""
    if not n.dtype.is_float:
        return None
    a, b = n.srcs
    groups = 1
    if b.op is Op.RESHAPE and b.srcs[0].op is Op.UNFOLD and b.ndim == 4:
        unfold = b.srcs[0]
        groups = b.shape[1]
        if b.shape != (unfold.shape[0], groups, unfold.shape[1] // groups, unfold.shape[2]):
            return None
    elif b.op is Op.UNFOLD:
        unfold = b
    else:
        return None
    w = a.srcs[0] if a.op is Op.EXPAND else a
    if w.op is not Op.RESHAPE or w.srcs[0].ndim != 4:
        return None
    weight, x = w.srcs[0], unfold.srcs[0]
    out_c, in_per_group, kh, kw = weight.shape
    (kernel, stride, padding, dilation) = _window(unfold.attrs)
    if kernel != (kh, kw) or in_per_group * groups != x.shape[1] or out_c % groups:
        return None
    if groups == 1 and w.shape[-2:] != (out_c, in_per_group * kh * kw):
        return None
    if groups > 1 and w.shape[-3:] != (groups, out_c // groups, in_per_group * kh * kw):
        return None
    xs = cv.sym.shape(x)
    if not is_static(tuple(xs[1:])):
        return None
    oh = window_out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    ow = window_out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])

    def build(bias=None):
        inputs = [cv.value(x), cv.value(weight)] + ([cv.value(bias)] if bias is not None else [])
        name = cv.emit(
            "Conv",
            inputs,
            kernel_shape=[kh, kw],
            strides=list(stride),
            pads=[padding[0], padding[1], padding[0], padding[1]],
            dilations=list(dilation),
            group=groups,
        )
        return name, (xs[0], out_c, oh, ow)

    return [x, weight], build


def _match_conv_bias(cv: Converter, n: Node):
    """`Conv` with its bias for conv(...).reshape(N, O, oh, ow) + bias.reshape(1, O, 1, 1)
    (expanded). A per-channel bias commutes with any reshape within the
    channel, so the conv's own layout needs no check."""
    if n.ndim != 4:
        return None
    for out, other in ((n.srcs[0], n.srcs[1]), (n.srcs[1], n.srcs[0])):
        dot = out
        while dot.op is Op.RESHAPE:
            dot = dot.srcs[0]
        conv = cv._patterns.get(dot) if dot.op is Op.DOT else None
        shaped = other.srcs[0] if other.op is Op.EXPAND else other
        if conv is None or out.op is not Op.RESHAPE or shaped.op is not Op.RESHAPE or shaped.srcs[0].ndim != 1:
            continue
        bias = shaped.srcs[0]
        if shaped.shape != (1, bias.shape[0], 1, 1) or out.shape[1] != bias.shape[0]:
            continue
        deps, build = conv
        return [*deps, bias], functools.partial(build, bias)
    return None


def _match_relu(cv: Converter, n: Node):
    """`Relu` for where(x < 0 | x == 0, 0, x), as graphc.relu builds it."""
    cond, zero, x = n.srcs
    base = zero.srcs[0] if zero.op is Op.EXPAND else zero
    if not n.dtype.is_float or base.op is not Op.CONST or base.attrs["value"] != 0.0 or cond.op is not Op.OR:
        return None
    less, equal = cond.srcs
    if less.op is not Op.CMPLT or equal.op is not Op.CMPEQ or less.srcs != (x, zero) or equal.srcs != (x, zero):
        return None
    return [x], lambda: (cv.emit("Relu", [cv.value(x)]), cv.sym.shape(n))


def _match_max_pool(cv: Converter, n: Node):
    """`MaxPool` for gather(cols, argmax(cols, 2), 2) over the windows
    cols = unfold(pad(x, -inf)).reshape(N, C, kh*kw, L), as
    graphc.nn.functional.max_pool2d builds it; (inputs, build) or None."""
    cols, position = n.srcs
    if n.attrs["axis"] != 2 or not n.dtype.is_float or cols.op is not Op.RESHAPE or cols.ndim != 4:
        return None
    unfold, arg = cols.srcs[0], position.srcs[0] if position.op is Op.RESHAPE else position
    if unfold.op is not Op.UNFOLD or arg.op is not Op.ARGMAX or arg.srcs[0] is not cols or arg.attrs["axis"] != 2:
        return None
    (kh, kw), stride, padding, dilation = _window(unfold.attrs)
    x, pads = unfold.srcs[0], ((0, 0), (0, 0))
    if x.op is Op.PAD and x.attrs["value"] == float("-inf") and tuple(cv.sym.attr(x, "pads")[:2]) == ((0, 0), (0, 0)):
        x, pads = x.srcs[0], tuple(x.attrs["pads"][2:])
    xs = cv.sym.shape(x)
    if padding != (0, 0) or not is_static(tuple(xs[1:])):
        return None
    if any(p >= k for (lo, hi), k in zip(pads, (kh, kw)) for p in (lo, hi)):
        return None  # ONNX wants pads smaller than the window
    if cols.shape[1:3] != (x.shape[1], kh * kw) or n.shape != (x.shape[0], x.shape[1], 1, cols.shape[3]):
        return None
    oh = window_out_size(x.shape[2] + pads[0][0] + pads[0][1], kh, stride[0], 0, dilation[0])
    ow = window_out_size(x.shape[3] + pads[1][0] + pads[1][1], kw, stride[1], 0, dilation[1])

    def build():
        name = cv.emit(
            "MaxPool",
            [cv.value(x)],
            kernel_shape=[kh, kw],
            strides=list(stride),
            pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
            dilations=list(dilation),
        )
        return name, (xs[0], xs[1], oh, ow)

    return [x], build


def _unfold(cv: Converter, n: Node) -> tuple:
    """im2col from strided slices: [N, C, kh*kw, L], the layout of
    [N, C*kh*kw, L] (the caller's reshapes make it that)."""
    (src,) = n.srcs
    batch, c, h, w = cv.sym.shape(src)
    if not is_static((c, h, w)):
        raise ExportError(
            "graphc.onnx.export: unfold (convolution, pooling) over a dynamic spatial dim is not supported"
        )
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(n.attrs)
    oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
    x = cv.value(src)
    if ph or pw:
        zero = cv.initializer(np.array(0, dtype=src.dtype.np))
        x = cv.emit("Pad", [x, cv.i64([0, 0, ph, pw, 0, 0, ph, pw]), zero], mode="constant")
    pieces = []
    for i in range(kh):
        for j in range(kw):
            starts = [i * dh, j * dw]
            ends = [i * dh + sh * (oh - 1) + 1, j * dw + sw * (ow - 1) + 1]
            piece = cv.emit("Slice", [x, cv.i64(starts), cv.i64(ends), cv.i64([2, 3]), cv.i64([sh, sw])])
            pieces.append(cv.reshape(piece, (batch, c, oh, ow), (batch, c, 1, oh * ow)))
    out = pieces[0] if len(pieces) == 1 else cv.emit("Concat", pieces, axis=2)
    return out, (batch, c, kh * kw, oh * ow)


def _fold_op(cv: Converter, n: Node) -> str:
    """col2im: each kernel offset's block, spread out by the stride (zeros
    in between) and padded into place; the blocks are summed."""
    (src,) = n.srcs
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(n.attrs)
    batch, c, h, w = cv.sym.shape(n)
    if not is_static((c, h, w)):
        raise ExportError("graphc.onnx.export: fold over a dynamic spatial dim is not supported")
    oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
    hp, wp = h + 2 * ph, w + 2 * pw
    zero = cv.initializer(np.array(0, dtype=n.dtype.np))
    name, shape = cv.view(src)
    cols = cv.reshape(name, shape, (batch, c, kh * kw, oh, ow))
    total = None
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            block = cv.emit("Slice", [cols, cv.i64([k]), cv.i64([k + 1]), cv.i64([2])])
            block = cv.reshape(block, (batch, c, 1, oh, ow), (batch, c, oh, 1, ow, 1))
            spread = cv.emit("Pad", [block, cv.i64([0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1]), zero])
            spread = cv.reshape(spread, (batch, c, oh, sh, ow, sw), (batch, c, oh * sh, ow * sw))
            used_h, used_w = sh * (oh - 1) + 1, sw * (ow - 1) + 1
            spread = cv.emit("Slice", [spread, cv.i64([0, 0]), cv.i64([used_h, used_w]), cv.i64([2, 3])])
            lo_h, lo_w = i * dh, j * dw
            pads = [0, 0, lo_h, lo_w, 0, 0, hp - lo_h - used_h, wp - lo_w - used_w]
            placed = cv.emit("Pad", [spread, cv.i64(pads), zero])
            total = placed if total is None else cv.emit("Add", [total, placed])
    if ph or pw:
        total = cv.emit("Slice", [total, cv.i64([ph, pw]), cv.i64([ph + h, pw + w]), cv.i64([2, 3])])
    return total


def _gather(cv: Converter, n: Node) -> str:
    x, index = n.srcs
    axis = n.attrs["axis"]
    data = cv.value(x)
    # GatherElements wants the index no smaller than the data outside `axis`
    # ... torch.gather allows it: crop the data first.
    xs, ids = cv.sym.shape(x), cv.sym.shape(index)
    crop = [a for a in range(x.ndim) if a != axis and xs[a] != ids[a]]
    if crop:
        data = cv.emit("Slice", [data, cv.i64([0] * len(crop)), cv.ints(ids[a] for a in crop), cv.i64(crop)])
    return cv.emit("GatherElements", [data, cv.value(index)], axis=axis)


def _scatter_add(cv: Converter, n: Node) -> str:
    if cv.opset < 16:
        raise ExportError("graphc.onnx.export: scatter_add needs opset_version >= 16 (ScatterElements with add)")
    src, index = n.srcs
    zero = cv.onnx.numpy_helper.from_array(np.zeros(1, dtype=n.dtype.np))
    data = cv.emit("ConstantOfShape", [cv.ints(cv.sym.shape(n))], value=zero)
    return cv.emit("ScatterElements", [data, cv.value(index), cv.value(src)], axis=n.attrs["axis"], reduction="add")


def _iota(cv: Converter, n: Node) -> str:
    # A static IOTA is folded (Converter._fold); this one has a dynamic size.
    shape = cv.sym.shape(n)
    axis = n.attrs["axis"]
    length = cv.reshape(cv.dim(shape[axis]), (1,), ())
    zero, one = cv.initializer(np.array(0, dtype=np.int64)), cv.initializer(np.array(1, dtype=np.int64))
    values = cv.emit("Range", [zero, length, one])
    view = tuple(d if i == axis else 1 for i, d in enumerate(shape))
    values = cv.reshape(values, (shape[axis],), view)
    values = cv.emit("Expand", [values, cv.ints(shape)])
    return values if n.dtype is dtypes.int64 else cv.cast(values, n.dtype)


def _const(cv: Converter, n: Node) -> str:
    # Reached only for a constant of dynamic size: graphc.arange(n) (the
    # only kind symbolic.fit_traces lets through).
    if cv.sym.attr(n, "value") != ARANGE:
        raise ExportError(f"graphc.onnx.export: a constant of dynamic shape {cv.sym.shape(n)}")
    zero, one = cv.initializer(np.array(0, dtype=np.int64)), cv.initializer(np.array(1, dtype=np.int64))
    (length,) = cv.sym.shape(n)
    values = cv.emit("Range", [zero, cv.reshape(cv.dim(length), (1,), ()), one])
    return values if n.dtype is dtypes.int64 else cv.cast(values, n.dtype)


def _random(cv: Converter, n: Node) -> str:
    raise ExportError(
        "graphc.onnx.export: the model draws random numbers (dropout or another random op in training mode); "
        "export runs the model in eval mode, so this op is called regardless: ONNX export supports no random ops"
    )


# Patterns of several primitives that map to one ONNX op, keyed by the op
# of the pattern's last node: (converter, node) -> (inputs, build) or None.
PATTERNS = {
    Op.DOT: _match_conv,
    Op.ADD: _match_conv_bias,
    Op.GATHER: _match_max_pool,
    Op.WHERE: _match_relu,
}

CONVERTERS = {op: _elementwise for op in _ELEMENTWISE}
CONVERTERS.update({op: _reduce for op in _REDUCE})
CONVERTERS.update(
    {
        Op.CONST: _const,
        Op.IOTA: _iota,
        Op.RANDOM: _random,
        Op.CAST: _cast,
        Op.ARGMAX: _argmax,
        Op.ARGSORT: _argsort,
        Op.ATAN2: _atan2,
        Op.PERMUTE: _permute,
        Op.SLICE: _slice,
        Op.PAD: _pad,
        Op.CONCAT: _concat,
        Op.DOT: _dot,
        Op.FOLD: _fold_op,
        Op.GATHER: _gather,
        Op.SCATTER_ADD: _scatter_add,
    }
)
