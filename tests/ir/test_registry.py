"""Every Op has its entry in every table: a gap fails here, not in a user's program."""

from __future__ import annotations

import pytest

from graphc.ir import ops
from graphc.ir.ops import LEAF, NON_DIFFERENTIABLE, Op
from graphc.ir.rules import RULES
from graphc.passes.autodiff import VJP


@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.value)
def test_op_has_shape_rule_impl_and_vjp(op):
    assert op in RULES, f"{op.value} has no shape rule in graphc/ir/rules.py"
    assert callable(RULES[op].shape)
    if op is Op.INPUT:
        assert RULES[op].impl is None
    else:
        assert callable(RULES[op].impl), f"{op.value} has no reference implementation"
    differentiable = op not in LEAF and op not in NON_DIFFERENTIABLE
    assert (op in VJP) == differentiable, f"{op.value}: " + (
        "missing a VJP rule in passes/autodiff.py" if differentiable else "has a VJP but is marked non-differentiable"
    )


def test_groups_only_name_existing_ops_and_partition_sensibly():
    groups = [
        ops.UNARY,
        ops.BINARY,
        ops.TERNARY,
        ops.REDUCE,
        ops.MOVEMENT,
        ops.CONTRACTION,
        ops.INDEXING,
        LEAF,
    ]
    covered = set().union(*groups)
    assert covered == set(Op), f"ops in no group: {set(Op) - covered}"
    assert sum(len(g) for g in groups) == len(covered), "an op is in two kind groups"
    assert ops.COMMUTATIVE <= ops.BINARY


def test_op_names_parse_as_text_ir_identifiers():
    from graphc.ir.printer import BARE_NAME

    for op in Op:
        assert BARE_NAME.match(op.value), op.value
