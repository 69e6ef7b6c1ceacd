"""The real-model workloads of `graphc bench` (bench/model_workloads.py) at
tiny sizes: graphc, compiled and eager, computes the same losses (and
logits) as PyTorch from the same weights, and so do the JAX peers."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import model_workloads as mw  # noqa: E402

STEPS = 3  # graphc.compile: the first call runs eagerly, the second compiles, the third reuses


def tiny(cls, train=True):
    if cls is mw.CharGPT:
        return mw.CharGPT(mw.Config(train), batch=2, block=8, layers=1, d=32, heads=2, vocab=11)
    if cls is mw.WordLSTM:
        return mw.WordLSTM(mw.Config(train), bptt=3, batch=2, ntoken=50, nhid=16)
    # Batch statistics over 2 values per channel (layer4 maps are 1x1) would make
    # the losses after an update hypersensitive to rounding; 16 keeps them stable.
    return mw.ResNet18(mw.Config(train), batch=16)


def assert_matches_torch(work, run):
    want, _ = mw._first_calls(work.torch_run(compiled=False), STEPS)
    got, _ = mw._first_calls(run, STEPS)
    mw._check("peer", got, want, work.rtol, work.atol)
    # The steps train: a step that updated nothing would repeat its loss.
    if work.config.train:
        assert not np.allclose(want[0], want[-1])


@pytest.mark.slow  # compiling forward, backward and optimizer: minutes on a shared 2-core machine
@pytest.mark.parametrize("cls", [mw.CharGPT, mw.WordLSTM])
def test_training_step_compiled_matches_torch(cls):
    work = tiny(cls)
    assert_matches_torch(work, work.graphc_run(compiled=True))


def test_gpt_forward_compiled_matches_torch():
    work = tiny(mw.CharGPT, train=False)
    assert_matches_torch(work, work.graphc_run(compiled=True))


@pytest.mark.slow
@pytest.mark.parametrize("train", [True, False])
def test_resnet18_compiled_matches_torch(train):
    work = tiny(mw.ResNet18, train)
    assert_matches_torch(work, work.graphc_run(compiled=True))


def test_mismatch_is_reported():
    work = tiny(mw.WordLSTM)
    want, _ = mw._first_calls(work.torch_run(compiled=False), 2)
    with pytest.raises(AssertionError, match="differs from torch at call 2"):
        mw._check("graphc", [want[0], want[1] + 1.0], want, work.rtol, work.atol)


def test_compile_failure_falls_back_to_eager_graphc():
    class Broken(mw.WordLSTM):
        def graphc_run(self, compiled):
            if compiled:
                raise RuntimeError("cannot lower op foo")
            return super().graphc_run(compiled)

    work = Broken(mw.Config(True), bptt=2, batch=2, ntoken=20, nhid=8)
    notes = []
    want, _ = mw._first_calls(work.torch_run(compiled=False), STEPS)
    run = work._graphc_checked(want, notes)
    assert "graphc.compile failed (RuntimeError: cannot lower op foo): eager graphc timed" in notes[0]
    assert np.isfinite(mw._numpy(run()))


@pytest.mark.parametrize("cls,train", [(mw.CharGPT, True), (mw.CharGPT, False), (mw.WordLSTM, True)])
def test_jax_peers_match_torch(cls, train):
    pytest.importorskip("jax")
    work = tiny(cls, train)
    assert_matches_torch(work, work.jax_run())


@pytest.mark.slow
@pytest.mark.parametrize("train", [True, False])
def test_jax_resnet18_matches_torch(train):
    pytest.importorskip("jax")
    work = tiny(mw.ResNet18, train)
    assert_matches_torch(work, work.jax_run())
