"""docs/walkthrough.md is a doctest: every `>>>` example on the page runs
here, so the onboarding walkthrough stays true as the code changes.

When this fails, the page and the code disagree: update the page's output
if the change is intended (run `python -m doctest -o ELLIPSIS -o
NORMALIZE_WHITESPACE docs/walkthrough.md` from the repository root to see
every difference), otherwise fix the regression.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import graphc

PAGE = Path(__file__).resolve().parents[2] / "docs" / "walkthrough.md"


def test_walkthrough_examples_run():
    rng_state = graphc.get_rng_state()
    try:
        result = doctest.testfile(
            str(PAGE),
            module_relative=False,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
            raise_on_error=False,
            report=True,
            verbose=False,
        )
    finally:
        graphc.set_rng_state(rng_state)
    assert result.attempted > 0, f"no examples found in {PAGE}"
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in {PAGE.name} failed (see output above)"
    )
