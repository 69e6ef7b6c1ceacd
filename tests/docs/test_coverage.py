"""docs/coverage.md is current, and names graphc lacks fail clearly."""

from __future__ import annotations

import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc._missing import ALTERNATIVES

# Tensor attributes are looked up on an instance: Tensor.__getattr__ answers
# instance lookups.
SPACES = {"torch": graphc, "nn": nn, "F": F, "Tensor": graphc.ones(1)}


def test_coverage_page_is_current():
    pytest.importorskip("torch")
    from tests.docs import torch_coverage

    expected = torch_coverage.render(torch_coverage.categories())
    actual = torch_coverage.PAGE.read_text() if torch_coverage.PAGE.exists() else ""
    assert actual == expected, "docs/coverage.md is out of date: run `python -m tests.docs.torch_coverage --write`"


@pytest.mark.parametrize("key", sorted(ALTERNATIVES), ids=lambda k: f"{k[0]}.{k[1]}")
def test_alternative_named_for_missing_name(key):
    namespace, name = key
    # An entry for a name graphc now provides would hide the real attribute's
    # absence message from nobody and mislead readers: keep the table true.
    assert not hasattr(SPACES[namespace], name), f"{namespace}.{name} exists now; drop it from ALTERNATIVES"
    with pytest.raises(AttributeError, match="graphc does not provide") as info:
        getattr(SPACES[namespace], name)
    assert ALTERNATIVES[key] in str(info.value)
    assert "docs/coverage.md" in str(info.value)


@pytest.mark.parametrize(
    ("obj", "typo", "suggestion"),
    [(graphc, "zeross", "zeros"), (nn, "Conv2D", "Conv2d"), (F, "cross_entropy_", "cross_entropy")],
)
def test_typo_suggests_the_close_name(obj, typo, suggestion):
    with pytest.raises(AttributeError, match=f"did you mean '{suggestion}'"):
        getattr(obj, typo)


def test_tensor_attribute_typo_and_private_names():
    t = graphc.ones(2)
    with pytest.raises(AttributeError, match="did you mean 'size'"):
        t.sizee  # noqa: B018
    # Private lookups (getattr(t, "_x", None) in library code) stay cheap and
    # plain.
    with pytest.raises(AttributeError) as info:
        t._no_such_field  # noqa: B018
    assert "coverage" not in str(info.value)
    assert getattr(t, "_no_such_field", 7) == 7
