"""The language-model examples (09_char_gpt, 10_word_language_model) train
step for step like the same files run with PyTorch: each example is loaded
twice, once as written and once with its imports switched to torch; both
models start from torch's weights and see the same batches (dropout 0), and
their losses agree to 1e-4 relative, eagerly and with the training step
compiled."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TO_TORCH = [
    (r"^import graphc as torch$", "import torch"),
    (r"^import graphc\.nn as nn$", "import torch.nn as nn"),
    (r"^import graphc\.nn\.functional as F$", "import torch.nn.functional as F"),
    (r"^import graphc\.optim as optim$", "import torch.optim as optim"),
]
# the compiled variants: the interpreter (fast to build) always, LLVM as slow
COMPILED = [
    pytest.param(None, id="eager"),
    pytest.param("interp", id="compiled-interp"),
    pytest.param("llvm", id="compiled-llvm", marks=pytest.mark.slow),
]


def load_graphc(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_torch(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    for pattern, replacement in TO_TORCH:
        source = re.sub(pattern, replacement, source, flags=re.M)
    assert "graphc" not in source, "an import the switch does not cover"
    module = types.ModuleType(f"{name}_torch")
    module.__file__ = str(EXAMPLES / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    assert module.torch is torch
    return module


@pytest.fixture
def backend(request, monkeypatch):
    """The examples call torch.compile(fn); route it to the backend under test."""
    if request.param is not None:
        monkeypatch.setattr(graphc, "compile", functools.partial(graphc.compile, backend=request.param))
    return request.param


def copy_torch_weights(g_model, t_model):
    state = {k: graphc.tensor(v.detach().numpy().copy()) for k, v in t_model.state_dict().items()}
    result = g_model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def assert_same_weights(g_model, t_model, rtol):
    g_state = g_model.state_dict()
    for name, value in t_model.state_dict().items():
        np.testing.assert_allclose(g_state[name].numpy(), value.numpy(), rtol=rtol, atol=1e-4, err_msg=name)


# -- 09: character-level GPT ------------------------------------------------------------


@pytest.mark.parametrize("backend", COMPILED, indirect=True)
def test_char_gpt_trains_like_torch(backend):
    g_mod, t_mod = load_graphc("09_char_gpt"), load_torch("09_char_gpt")
    chars, data = g_mod.encode_text(g_mod.TEXT)
    ids = data.numpy()
    torch.manual_seed(0)
    t_model = t_mod.CharGPT(len(chars), block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0)
    g_model = g_mod.CharGPT(len(chars), block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0)
    copy_torch_weights(g_model, t_model)
    rng = np.random.default_rng(0)
    windows = [rng.integers(0, len(ids) - 17, 4) for _ in range(5)]
    batches = [(np.stack([ids[s : s + 16] for s in w]), np.stack([ids[s + 1 : s + 17] for s in w])) for w in windows]

    kwargs = dict(steps=5, lr=1e-2, warmup=2)
    theirs = t_mod.train(t_model, [(torch.tensor(x), torch.tensor(y)) for x, y in batches], **kwargs)
    ours = g_mod.train(
        g_model, [(graphc.tensor(x), graphc.tensor(y)) for x, y in batches], compile=backend is not None, **kwargs
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < ours[0]

    # sampling runs (eval mode, no_grad) and gives ids of the vocabulary
    g_model.eval()
    sample = g_model.generate(graphc.zeros(1, 1, dtype=graphc.long), max_new_tokens=8)
    assert sample.shape == (1, 9) and 0 <= int(sample.min()) and int(sample.max()) < len(chars)


def test_char_gpt_warmup_cosine_schedule_matches_torch():
    g_mod, t_mod = load_graphc("09_char_gpt"), load_torch("09_char_gpt")
    lrs = []
    for lib, mod in ((graphc, g_mod), (torch, t_mod)):
        opt = mod.optim.AdamW([lib.nn.Parameter(lib.zeros(2))], lr=0.1)
        sched = mod.optim.lr_scheduler.LambdaLR(opt, mod.warmup_cosine(3, 12))
        got = []
        for _ in range(12):
            got.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        lrs.append(got)
    np.testing.assert_allclose(lrs[0], lrs[1], rtol=1e-12)
    assert lrs[0][2] == pytest.approx(0.1) and lrs[0][-1] < 0.03


# -- 10: word-level language model ------------------------------------------------------


def _word_lm_pair(model_type, tied):
    g_mod, t_mod = load_graphc("10_word_language_model"), load_torch("10_word_language_model")
    argv = ["--model", model_type, "--emsize", "16", "--nhid", "16", "--nlayers", "2", "--dropout", "0"]
    argv += ["--nhead", "2"] + (["--tied"] if tied else [])
    args = g_mod.parse_args(argv)
    corpus = g_mod.Corpus(g_mod.CORPUS)
    ntokens = len(corpus.dictionary)
    torch.manual_seed(0)
    t_model = t_mod.make_model(args, ntokens)
    g_model = g_mod.make_model(args, ntokens)
    copy_torch_weights(g_model, t_model)
    return g_mod, t_mod, g_model, t_model, corpus


def _word_lm_cases():
    """Every model eagerly; one recurrent model and the transformer compiled
    by each backend (LLVM builds are slow), GRU also by the interpreter."""
    models = [("LSTM", False), ("LSTM", True), ("GRU", False), ("RNN_TANH", False), ("RNN_RELU", True)]
    models.append(("Transformer", False))
    compiled = {"interp": [("LSTM", True), ("GRU", False), ("Transformer", False)]}
    compiled["llvm"] = [("LSTM", True), ("Transformer", False)]
    cases = []
    for backend in COMPILED:
        for model_type, tied in compiled.get(backend.values[0], models):
            case_id = f"{model_type}{'-tied' if tied else ''}-{backend.id}"
            cases.append(pytest.param(model_type, tied, backend.values[0], id=case_id, marks=backend.marks))
    return cases


@pytest.mark.parametrize("model_type, tied, backend", _word_lm_cases(), indirect=["backend"])
def test_word_language_model_trains_like_torch(model_type, tied, backend):
    g_mod, t_mod, g_model, t_model, corpus = _word_lm_pair(model_type, tied)
    if tied:
        assert g_model.decoder.weight is g_model.encoder.weight
    ids = corpus.train.numpy()
    bptt, batch_size, lr, clip = 5, 3, 20.0, 0.25

    t_step = t_mod.make_step(t_model, t_mod.nn.NLLLoss(), clip)
    g_step = g_mod.make_step(g_model, g_mod.nn.NLLLoss(), clip, compile=backend is not None)
    t_train = t_mod.batchify(torch.tensor(ids), batch_size)
    g_train = g_mod.batchify(graphc.tensor(ids), batch_size)
    assert g_train.tolist() == t_train.tolist()
    theirs = t_mod.train_epoch(t_model, t_step, t_train, bptt, batch_size, lr, max_batches=8)
    ours = g_mod.train_epoch(g_model, g_step, g_train, bptt, batch_size, lr, max_batches=8)
    assert len(ours) == 8
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert_same_weights(g_model, t_model, rtol=1e-3)

    # evaluation (eval mode, no_grad, carried hidden state) agrees too
    valid = corpus.valid.numpy()
    t_val = t_mod.evaluate(t_model, t_mod.nn.NLLLoss(), t_mod.batchify(torch.tensor(valid), 1), bptt, 1)
    g_val = g_mod.evaluate(g_model, g_mod.nn.NLLLoss(), g_mod.batchify(graphc.tensor(valid), 1), bptt, 1)
    assert g_val == pytest.approx(t_val, rel=1e-4)


def test_word_language_model_batching_and_errors():
    g_mod = load_graphc("10_word_language_model")
    data = g_mod.batchify(graphc.arange(11), 3)
    assert data.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    x, y = g_mod.get_batch(data, 1, 5)
    assert x.tolist() == [[1, 4, 7]] and y.tolist() == [2, 5, 8]
    with pytest.raises(ValueError, match="nhid must be equal to emsize"):
        g_mod.RNNModel("LSTM", 10, 8, 6, 1, tie_weights=True)
    with pytest.raises(ValueError, match="unknown model type"):
        g_mod.RNNModel("CNN", 10, 8, 8, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["09_char_gpt", "10_word_language_model"])
def test_example_main_runs(name, capsys):
    if name == "09_char_gpt":
        argv = ["--steps", "12", "--n-layer", "1", "--block-size", "16", "--batch-size", "8", "--sample-chars", "20"]
    else:
        argv = ["--epochs", "2"]
    sys.path.insert(0, str(EXAMPLES))
    try:
        losses = load_graphc(name).main(argv)
    finally:
        sys.path.remove(str(EXAMPLES))
    out = capsys.readouterr().out
    assert "loss" in out and all(np.isfinite(losses))
