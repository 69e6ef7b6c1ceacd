"""`graphc ir` prints every stage of the pipeline for a model in a file."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graphc.cli import main
from graphc.ir.parser import parse_graph

MODEL = textwrap.dedent(
    """
    import graphc.nn as nn
    import graphc.nn.functional as F

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 3)
            self.fc2 = nn.Linear(3, 2)

        def forward(self, x):
            return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)

    def loss(x, w):
        return (x @ w).sum()
    """
)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def run(capsys, *argv):
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_traced_ir_is_readable_and_parses(model_file, capsys):
    out = run(capsys, "ir", f"{model_file}:MLP", "--input-shape", "2,4")
    assert out.startswith("graph @MLP(%x: f32[2,4], %fc1.weight: f32[3,4]")
    assert "= dot %x" in out and "return" in out
    graph = parse_graph(out)
    assert [i.attrs["name"] for i in graph.inputs][:2] == ["x", "fc1.weight"]
    assert graph.outputs[0].shape == (2, 2)


def test_autodiff_stage_adds_gradients(model_file, capsys):
    out = run(capsys, "ir", f"{model_file}:loss", "--input-shape", "2,3", "--input-shape", "3,5", "--stage", "autodiff")
    assert "as grad_x" in out and "as grad_w" in out


def test_grad_of_non_scalar_output_explains(model_file):
    with pytest.raises(SystemExit, match="needs a scalar output.*--reduce"):
        main(["ir", f"{model_file}:MLP", "--input-shape", "2,4", "--grad"])


def test_grad_with_reduce(model_file, capsys):
    out = run(capsys, "ir", f"{model_file}:MLP", "--input-shape", "2,4", "--grad", "--reduce", "mean")
    assert "grad_fc1.weight" in out


@pytest.mark.parametrize(
    "stage, expected",
    [
        ("optimized", "graph @MLP"),
        ("fused", "kernel k"),
        ("plan", "peak arena bytes"),
        ("llvm", "define"),
        ("asm", "ret"),
        ("cuda", "__global__"),
    ],
)
def test_every_stage_prints(model_file, capsys, stage, expected):
    out = run(capsys, "ir", f"{model_file}:MLP", "--input-shape", "2,4", "--stage", stage)
    assert expected in out


@pytest.mark.parametrize("stage", ["fused", "llvm", "cuda"])
def test_stages_of_an_empty_batch_print(model_file, capsys, stage):
    # A batch of 0 compiles like any other (no zero-size special case).
    out = run(capsys, "ir", f"{model_file}:MLP", "--input-shape", "0,4", "--stage", stage)
    assert "kernel" in out or "define" in out or "__global__" in out


def test_dot_output(model_file, tmp_path, capsys):
    dot = tmp_path / "g.dot"
    run(capsys, "ir", f"{model_file}:MLP", "--input-shape", "2,4", "--dot", str(dot))
    text = dot.read_text()
    assert text.startswith("digraph") and "dot" in text


def test_default_target_is_the_only_module(model_file, capsys):
    out = run(capsys, "ir", str(model_file), "--input-shape", "2,4")
    assert out.startswith("graph @MLP(")


def test_ambiguous_target_names_candidates(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(MODEL + "\nclass Other(MLP):\n    pass\n")
    with pytest.raises(SystemExit, match="candidates: MLP, Other"):
        main(["ir", str(path), "--input-shape", "2,4"])


def test_missing_file():
    with pytest.raises(SystemExit, match="no such file"):
        main(["ir", "nope.py", "--input-shape", "1"])


def test_missing_input_shape_is_a_usage_error(model_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ir", f"{model_file}:MLP"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: graphc ir")
    assert "MLP takes 1 input(s) (x)" in err and "--input-shape" in err


def test_too_few_and_too_many_input_shapes_are_usage_errors(model_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ir", f"{model_file}:loss", "--input-shape", "2,3"])
    assert exit_info.value.code == 2
    assert "missing: w" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["ir", f"{model_file}:MLP", "--input-shape", "2,4", "--input-shape", "4"])
    assert exit_info.value.code == 2
    assert "MLP takes 1 input(s) but 2 --input-shape were given" in capsys.readouterr().err


def test_shapes_that_do_not_fit_the_model_say_so(model_file):
    with pytest.raises(SystemExit, match="tracing MLP with input shapes 2,5 failed: .*in_features=4"):
        main(["ir", f"{model_file}:MLP", "--input-shape", "2,5"])


def test_command_line_exit_status_and_no_traceback(model_file):
    """The same, as a user runs it: status 2, usage on stderr, no traceback."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "graphc.cli", "ir", f"{model_file}:MLP"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "usage: graphc ir" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
