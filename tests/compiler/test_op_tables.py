"""Every primitive has its entry in every table of every layer that needs it.

Adding an `Op` means one entry per table: its shape rule and numpy reference
(graphc/ir/rules.py), its VJP (passes/autodiff.py), how fusion computes it
(codegen/fusion.py, or passes/lower.py's expansion) and, for an elementwise
op, its scalar lowering in each backend (codegen/llvm/expr.py,
codegen/cuda/expr.py). A gap fails here, naming the table and the op,
instead of reaching a user as NotImplementedError.
"""

from __future__ import annotations

import pytest

from graphc.codegen import fusion
from graphc.codegen.cuda import expr as cuda_expr
from graphc.codegen.cuda.render import RENDERERS
from graphc.codegen.kernel import KOp
from graphc.codegen.llvm import expr as llvm_expr
from graphc.codegen.llvm import kernels as llvm_kernels
from graphc.codegen.llvm import module as llvm_module
from graphc.ir import ops
from graphc.ir.ops import Op
from graphc.ir.rules import RULES
from graphc.passes.autodiff import VJP
from graphc.passes.lower import EXPANSIONS

# The ops a table may lack, each with the reason.
NO_REFERENCE = {
    Op.INPUT: "the caller supplies a graph input's value",
}
NO_VJP = {
    Op.INPUT: "gradients stop at a graph input (autodiff returns them; no rule to apply)",
    Op.CONST: "a constant has no operands to pass a gradient to",
}
NOT_FUSED = {
    Op.INPUT: "a graph input is a buffer the program reads, never computed",
}

# Per backend: the kernel kinds it renders and the primitives it keeps from
# passes/lower.py (fusion.fuse's `keep`; runtime/cuda.py passes none).
BACKEND_KINDS = {
    "codegen/llvm/kernels.py KINDS": (set(llvm_kernels.KINDS), llvm_module.NATIVE_OPS),
    "codegen/cuda/render.py RENDERERS": (set(RENDERERS), frozenset()),
}


def _names(items) -> list[str]:
    return sorted(x.value for x in items)


def _assert_has(table: str, keys, required, exceptions=frozenset()) -> None:
    """table (its keys) has every required op but the exceptions."""
    missing = set(required) - set(keys) - set(exceptions)
    assert not missing, f"{table} has no entry for {_names(missing)}"


def test_rules_have_a_shape_rule_and_reference_for_every_op():
    _assert_has("graphc/ir/rules.py RULES", RULES, Op)
    no_shape = {op for op, rule in RULES.items() if not callable(rule.shape)}
    assert not no_shape, f"graphc/ir/rules.py RULES: no shape rule for {_names(no_shape)}"
    no_impl = {op for op, rule in RULES.items() if not callable(rule.impl)}
    assert no_impl == set(NO_REFERENCE), (
        f"graphc/ir/rules.py RULES: no numpy reference for {_names(no_impl - set(NO_REFERENCE))}"
        f" (a reference for {_names(set(NO_REFERENCE) - no_impl)}: drop it from NO_REFERENCE)"
    )


def test_autodiff_has_a_vjp_for_every_differentiable_op():
    _assert_has("passes/autodiff.py VJP", VJP, set(Op) - ops.NON_DIFFERENTIABLE, NO_VJP)
    stale = set(NO_VJP) & set(VJP)
    assert not stale, f"passes/autodiff.py VJP has {_names(stale)}: drop them from NO_VJP"


def test_fusion_computes_every_op():
    """Elementwise ops become scalar expressions; every other op is inlined,
    gets a kernel of its own, or is expanded by passes/lower.py first."""
    tables = {
        "ops.ELEMENTWISE": ops.ELEMENTWISE,
        "codegen/fusion.py INLINED": fusion.INLINED,
        "codegen/fusion.py OWN_KERNEL": fusion.OWN_KERNEL,
        "passes/lower.py EXPANSIONS": EXPANSIONS,
    }
    covered = set().union(*map(set, tables.values()))
    missing = set(Op) - covered - set(NOT_FUSED)
    assert not missing, f"{_names(missing)} in none of {', '.join(tables)}"
    # ATTENTION is both: a backend with an attention kernel keeps it from lower.
    twice = [(a, b) for a in tables for b in tables if a < b and (set(tables[a]) & set(tables[b])) - set(EXPANSIONS)]
    assert not twice, f"an op is in two of fusion's ways to compute it: {twice}"


SCALAR_TABLES = [
    (f"codegen/{backend}/expr.py {group}", getattr(module, group), getattr(ops, group))
    for backend, module in (("llvm", llvm_expr), ("cuda", cuda_expr))
    for group in ("UNARY", "BINARY", "TERNARY")
]


@pytest.mark.parametrize("table,lowerings,group", SCALAR_TABLES, ids=[t[0] for t in SCALAR_TABLES])
def test_backends_lower_every_elementwise_op(table, lowerings, group):
    _assert_has(table, lowerings, group)
    extra = set(lowerings) - set(group)
    assert not extra, f"{table} has entries for {_names(extra)}, which are not in that group of graphc/ir/ops.py"


@pytest.mark.parametrize("backend,module", [("llvm", llvm_expr), ("cuda", cuda_expr)], ids=["llvm", "cuda"])
def test_backends_lower_every_kernel_node(backend, module):
    _assert_has(f"codegen/{backend}/expr.py NODES", module.NODES, KOp)


@pytest.mark.parametrize("table", list(BACKEND_KINDS))
def test_backends_render_every_kernel_kind_fusion_emits(table):
    """Each backend renders the kinds of every op's own kernels, unless it
    leaves that op to passes/lower.py's expansion; inlined and elementwise
    ops need the elementwise kind (a stored one gets its own loop)."""
    kinds, keep = BACKEND_KINDS[table]
    assert "elementwise" in kinds, f"{table} has no elementwise kernels"
    lacking = {}
    for op, own in fusion.OWN_KERNEL.items():
        expanded = op in EXPANSIONS and op not in keep
        if not expanded and not own.kinds <= kinds:
            lacking[op.value] = sorted(own.kinds - kinds)
    assert not lacking, f"{table} lacks the kernel kinds of {lacking} (or passes/lower.py must expand them)"
