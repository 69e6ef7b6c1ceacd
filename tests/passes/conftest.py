"""Make tests/ir/graphgen.py (the random graph generator) importable here."""

import sys
from pathlib import Path

_IR_TESTS = str(Path(__file__).resolve().parent.parent / "ir")
if _IR_TESTS not in sys.path:
    sys.path.insert(0, _IR_TESTS)
