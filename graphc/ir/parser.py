"""Read the text IR that graphc/ir/printer.py writes back into a Graph.

`parse_graph(text)` rebuilds every node through `graph.node(...)`, so the
result is type-checked by the shape rules and hash-consed: parsing a
printout of a live graph returns the very same nodes. Bad text raises
`IRParseError` with the line number and the offending line; a well-formed
line whose types do not check raises it too, with the rule's message.
Comments run from `#` to the end of a line.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from graphc.ir import dtypes
from graphc.ir.graph import ConstArray, Graph, IRTypeError, Node, TensorType, node
from graphc.ir.ops import Op


class IRParseError(ValueError):
    """The text is not valid graphc IR; the message gives the line."""


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+|\#[^\n]*)
  | (?P<nl>\n)
  | (?P<arrow>->)
  | (?P<float>-?(?:\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf(?![A-Za-z0-9_.])|nan(?![A-Za-z0-9_.])))
  | (?P<int>-?\d+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<ref>%(?:[A-Za-z0-9_.]+|"(?:[^"\\]|\\.)*"))
  | (?P<gname>@(?:[A-Za-z_][A-Za-z0-9_.]*|"(?:[^"\\]|\\.)*"))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()\[\]{},:=])
    """,
    re.VERBOSE,
)


class _Tok:
    __slots__ = ("kind", "line", "text")

    def __init__(self, kind: str, text: str, line: int):
        self.kind, self.text, self.line = kind, text, line

    def __repr__(self) -> str:
        return repr(self.text) if self.kind != "eof" else "end of text"


def _tokenize(text: str) -> list[_Tok]:
    toks, line, pos = [], 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise IRParseError(f"line {line}: unexpected character {text[pos]!r}\n    {text.splitlines()[line - 1]}")
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        if kind == "nl":
            line += 1
        elif kind != "ws":
            toks.append(_Tok(kind, m.group(), line))
        pos = m.end()
    toks.append(_Tok("eof", "", line))
    return toks


def _unquote(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


def _ref_key(ref: str) -> str:
    """The binding a `%ref` token names: `%0` (a numbered node) and `%"0"`
    (an input named "0") are different bindings."""
    body = ref[1:]
    return "#" + body if body.isdigit() else _unquote(body)


def _dtype(tok: _Tok) -> dtypes.DType:
    try:
        return dtypes.from_short(tok.text)
    except KeyError:
        raise IRParseError(f"line {tok.line}: unknown dtype {tok.text!r}") from None


class _Parser:
    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.toks = _tokenize(text)
        self.i = 0
        self.env: dict[str, Node] = {}
        self.results: list[TensorType] = []  # the header's declared result types

    # -- token helpers ------------------------------------------------------

    def error(self, msg: str, tok: _Tok | None = None) -> IRParseError:
        tok = tok or self.peek()
        source = self.lines[tok.line - 1] if 0 < tok.line <= len(self.lines) else ""
        return IRParseError(f"line {tok.line}: {msg}\n    {source.strip()}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.next()
        if tok.text != text or tok.kind == "str":
            raise self.error(f"expected {text!r}, found {tok!r}", tok)
        return tok

    def expect_kind(self, kind: str, what: str) -> _Tok:
        tok = self.next()
        if tok.kind != kind:
            raise self.error(f"expected {what}, found {tok!r}", tok)
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok.text == text and tok.kind != "str":
            self.i += 1
            return True
        return False

    # -- pieces -------------------------------------------------------------

    def type_(self) -> TensorType:
        dtype = _dtype(self.expect_kind("ident", "a type such as f32[2,3]"))
        self.expect("[")
        dims: list[int] = []
        while not self.accept("]"):
            if dims:
                self.expect(",")
            dims.append(int(self.expect_kind("int", "a dimension").text))
        return TensorType(tuple(dims), dtype)

    def scalar(self) -> Any:
        tok = self.next()
        if tok.kind == "float":
            return float(tok.text)
        if tok.kind == "int":
            return int(tok.text)
        if tok.kind == "ident" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise self.error(f"expected a number or true/false, found {tok!r}", tok)

    def attr_value(self) -> Any:
        tok = self.peek()
        if tok.text == "[" and tok.kind == "punct":
            self.next()
            items: list[Any] = []
            while not self.accept("]"):
                if items:
                    self.expect(",")
                items.append(self.attr_value())
            return tuple(items)
        if tok.kind == "str":
            return _unquote(self.next().text)
        if tok.kind == "ident" and tok.text == "none":
            self.next()
            return None
        if tok.kind == "ident" and tok.text not in ("true", "false"):
            return _dtype(self.next())
        return self.scalar()

    def attrs(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if not self.accept("{"):
            return result
        while not self.accept("}"):
            if result:
                self.expect(",")
            key = self.expect_kind("ident", "an attribute name")
            self.expect("=")
            if key.text in result:
                raise self.error(f"attribute {key.text!r} given twice", key)
            result[key.text] = self.attr_value()
        return result

    def operand(self) -> Node:
        tok = self.peek()
        if tok.kind == "ref":
            self.next()
            key = _ref_key(tok.text)
            if key not in self.env:
                raise self.error(f"{tok.text} is used before it is defined", tok)
            return self.env[key]
        value = self.scalar()
        self.expect(":")
        dtype = _dtype(self.expect_kind("ident", "a dtype after ':'"))
        return self.build(
            Op.CONST,
            [],
            {"value": _cast_scalar(value, dtype), "dtype": dtype, "shape": ()},
            tok,
        )

    def build(self, op: Op, srcs: list[Node], attrs: dict[str, Any], tok: _Tok) -> Node:
        try:
            return node(op, *srcs, **attrs)
        except IRTypeError as e:
            raise self.error(str(e), tok) from None

    # -- lines --------------------------------------------------------------

    def header(self) -> tuple[str, list[Node]]:
        self.expect("graph")
        name = _unquote(self.expect_kind("gname", "@name").text[1:])
        self.expect("(")
        inputs: list[Node] = []
        while not self.accept(")"):
            if inputs:
                self.expect(",")
            tok = self.expect_kind("ref", "an input %name")
            self.expect(":")
            t = self.type_()
            input_name = _unquote(tok.text[1:])
            n = self.build(
                Op.INPUT,
                [],
                {"name": input_name, "shape": t.shape, "dtype": t.dtype},
                tok,
            )
            self.define(_ref_key(tok.text), n, tok)
            inputs.append(n)
        self.expect("->")
        self.expect("(")
        self.results_tok = self.peek()
        while not self.accept(")"):
            if self.results:
                self.expect(",")
            self.results.append(self.type_())
        self.expect("{")
        return name, inputs

    def define(self, key: str, n: Node, tok: _Tok) -> None:
        if key in self.env:
            raise self.error(f"{tok.text} is defined twice", tok)
        self.env[key] = n

    def body_line(self) -> None:
        tok = self.expect_kind("ref", "a %name or 'return'")
        self.expect(":")
        declared = self.type_()
        self.expect("=")
        op_tok = self.expect_kind("ident", "an op name")
        try:
            op = Op(op_tok.text)
        except ValueError:
            raise self.error(f"unknown op {op_tok.text!r}", op_tok) from None
        if op is Op.CONST:
            n = self.const_line(declared, tok)
        else:
            srcs: list[Node] = []
            if self.peek().kind in ("ref", "float", "int") or self.peek().text in (
                "true",
                "false",
            ):
                srcs.append(self.operand())
                while self.accept(","):
                    srcs.append(self.operand())
            n = self.build(op, srcs, self.attrs(), op_tok)
        if n.type != declared:
            raise self.error(
                f"{op.value}: declared type {declared} but the operands give {n.type}",
                tok,
            )
        self.define(_ref_key(tok.text), n, tok)

    def const_line(self, declared: TensorType, tok: _Tok) -> Node:
        value = self.attr_value()
        attrs = {"dtype": declared.dtype, "shape": declared.shape}
        if isinstance(value, tuple):
            arr = np.array(value, dtype=declared.dtype.np)
            if arr.ndim != 1 or arr.size != TensorType(declared.shape, declared.dtype).numel:
                raise self.error(f"const: {arr.size} values for type {declared}", tok)
            attrs["value"] = ConstArray(arr.reshape(declared.shape))
        else:
            attrs["value"] = _cast_scalar(value, declared.dtype)
        return self.build(Op.CONST, [], attrs, tok)

    def return_line(self, name: str, inputs: list[Node]) -> Graph:
        outputs: list[Node] = []
        names: list[str] = []
        while True:
            outputs.append(self.operand())
            if self.accept("as"):
                tok = self.next()
                if tok.kind not in ("ident", "str"):
                    raise self.error(f"expected an output name after 'as', found {tok!r}", tok)
                names.append(_unquote(tok.text))
            else:
                names.append(f"out{len(outputs) - 1}")
            if not self.accept(","):
                break
        actual = [o.type for o in outputs]
        if actual != self.results:
            declared = ", ".join(str(t) for t in self.results)
            given = ", ".join(str(t) for t in actual)
            raise self.error(
                f"header declares results ({declared}) but return gives ({given})",
                self.results_tok,
            )
        self.expect("}")
        if self.peek().kind != "eof":
            raise self.error(f"unexpected {self.peek()!r} after the graph's closing brace")
        return Graph(inputs, outputs, name, names)

    def graph(self) -> Graph:
        name, inputs = self.header()
        while not self.accept("return"):
            self.body_line()
        return self.return_line(name, inputs)


def _cast_scalar(value: Any, dtype: dtypes.DType) -> Any:
    if dtype.is_float:
        return float(value)
    if dtype.is_bool:
        return bool(value)
    return int(value)


def parse_graph(text: str) -> Graph:
    """Parse the text form of a graph (see graphc/ir/printer.py).

    >>> g = parse_graph('''
    ... graph @f(%x: f32[2]) -> (f32[2]) {
    ...   %0: f32[2] = neg %x
    ...   return %0 as y
    ... }''')
    >>> g.output_names
    ('y',)
    """
    return _Parser(text).graph()


__all__ = ["IRParseError", "parse_graph"]
