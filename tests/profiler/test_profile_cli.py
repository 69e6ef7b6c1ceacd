"""`graphc profile`: the table for a script run under the profiler."""

import json

import pytest

from graphc import cli

SCRIPT = """
import sys
import graphc
from graphc.profiler import record_function

x = graphc.ones(8, 8)
with record_function("script work"):
    y = (x @ x).sum()
assert y.item() == 512.0
print("args", sys.argv[1:])
"""


def test_profile_a_script(tmp_path, capsys):
    script = tmp_path / "work.py"
    script.write_text(SCRIPT)
    trace = tmp_path / "t.json"
    assert cli.main(["profile", str(script), "a1", "--row-limit", "5", "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "args ['a1']" in out
    assert "script work" in out and "eager dot" in out and "Self CPU time total" in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert "script work" in {e["name"] for e in events}


def test_profile_rejects_unknown_targets(capsys):
    with pytest.raises(SystemExit, match="neither a script nor a workload"):
        cli.main(["profile", "no_such_thing"])
