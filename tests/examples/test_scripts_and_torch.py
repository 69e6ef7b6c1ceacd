"""The examples run as scripts (`cd examples; python 01_regression.py`),
and the ones that need no vision package print the same kind of output
when their imports are switched from graphc to PyTorch: identical lines
with the numbers masked, every loss series falling in both, and the
autograd snippets' text identical except for the module name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NO_VISION = ["01_regression", "02_autograd", "03_random_mlp", "06_cifar_cnn", "08_linear_logistic"]
TO_TORCH = [
    (r"^import graphc as torch$", "import torch"),
    (r"^import graphc\.nn as nn$", "import torch.nn as nn"),
    (r"^import graphc\.nn\.functional as F$", "import torch.nn.functional as F"),
    (r"^import graphc\.optim as optim$", "import torch.optim as optim"),
    (r"^from graphc\.utils\.data import", "from torch.utils.data import"),
]
NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")


def run_script(source: str, name: str, capsys):
    """Run `source` as the script `name`; (printed lines, its globals)."""
    capsys.readouterr()
    namespace = {"__name__": "__main__"}
    exec(compile(source, str(EXAMPLES / f"{name}.py"), "exec"), namespace)
    return capsys.readouterr().out.splitlines(), namespace


def numbers(lines, pattern):
    return [float(m.group(1)) for m in map(re.compile(pattern).search, lines) if m]


@pytest.mark.parametrize("name", NO_VISION)
def test_example_runs_as_a_script(name):
    proc = subprocess.run([sys.executable, f"{name}.py"], cwd=EXAMPLES, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", NO_VISION)
def test_example_under_pytorch_prints_the_same_kind_of_numbers(name, capsys):
    torch = pytest.importorskip("torch")  # the optional "compare" extra
    source = (EXAMPLES / f"{name}.py").read_text()
    torch_source = source
    for pattern, replacement in TO_TORCH:
        torch_source = re.sub(pattern, replacement, torch_source, flags=re.M)
    assert "graphc" not in torch_source, "an import the switch does not cover"
    ours, _ = run_script(source, name, capsys)
    theirs, namespace = run_script(torch_source, name, capsys)
    assert namespace["torch"] is torch  # the second run really used PyTorch
    assert [NUMBER.sub("#", line) for line in ours] == [
        NUMBER.sub("#", line.replace("torch.", "graphc.")) for line in theirs
    ]
    if name == "02_autograd":
        assert ours == [line.replace("torch.int64", "graphc.int64") for line in theirs]
    elif name == "08_linear_logistic":
        for lines in (ours, theirs):
            (w,), (b,) = numbers(lines, r"y = (\S+) x"), numbers(lines, r"x \+ (\S+)")
            assert abs(w - 3) < 0.05 and abs(b - 2) < 0.05
            assert numbers(lines, r"accuracy (\S+)%")[0] > 95
    else:
        pattern = {"01_regression": r"mean loss (\S+)", "03_random_mlp": r"loss: (\S+)", "06_cifar_cnn": r"loss (\S+)"}[
            name
        ]
        for lines in (ours, theirs):
            losses = numbers(lines, pattern)
            assert len(losses) >= 5 and losses[-1] < losses[0]
        # the same problem at the same scale: first losses agree to 10%
        assert numbers(ours, pattern)[0] == pytest.approx(numbers(theirs, pattern)[0], rel=0.1)
