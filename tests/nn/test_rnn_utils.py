"""graphc.nn.utils.rnn (padding, packing) and recurrent layers over packed
sequences, against torch.nn.utils.rnn."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
import graphc.nn as nn  # noqa: E402
from graphc.nn.utils import rnn  # noqa: E402
from tests.nn.nn_testutil import assert_close, copy_weights, randn  # noqa: E402

trnn = torch.nn.utils.rnn
LENGTHS = [2, 5, 3, 5]  # unsorted, with a tie


def _seqs(lengths, features=3):
    return [randn(n, features, seed=i) for i, n in enumerate(lengths)]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_values_and_gradients(batch_first, side):
    arrays = _seqs(LENGTHS)
    gs = [graphc.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    g = rnn.pad_sequence(gs, batch_first=batch_first, padding_value=-2.0, padding_side=side)
    t = trnn.pad_sequence(ts, batch_first=batch_first, padding_value=-2.0, padding_side=side)
    assert_close(g, t)
    cot = randn(*t.shape, seed=9)
    (g * graphc.tensor(cot)).sum().backward()
    (t * torch.tensor(cot)).sum().backward()
    for a, b in zip(gs, ts):
        assert_close(a.grad, b.grad)


def test_pad_sequence_errors():
    with pytest.raises(ValueError, match="padding_side"):
        rnn.pad_sequence([graphc.ones(2, 3)], padding_side="middle")
    with pytest.raises(RuntimeError, match="trailing shape"):
        rnn.pad_sequence([graphc.ones(2, 3), graphc.ones(2, 4)])


@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_packed_match_torch(batch_first):
    padded = randn(4, 5, 3) if batch_first else randn(5, 4, 3)
    g_in = graphc.tensor(padded, requires_grad=True)
    t_in = torch.tensor(padded, requires_grad=True)
    g = rnn.pack_padded_sequence(g_in, LENGTHS, batch_first=batch_first, enforce_sorted=False)
    t = trnn.pack_padded_sequence(t_in, torch.tensor(LENGTHS), batch_first=batch_first, enforce_sorted=False)
    assert isinstance(g, rnn.PackedSequence)
    assert_close(g.data, t.data)
    assert g.batch_sizes.tolist() == t.batch_sizes.tolist()
    assert g.sorted_indices.tolist() == t.sorted_indices.tolist()
    assert g.unsorted_indices.tolist() == t.unsorted_indices.tolist()
    g_out, g_len = rnn.pad_packed_sequence(g, batch_first=batch_first, padding_value=7.0, total_length=6)
    t_out, t_len = trnn.pad_packed_sequence(t, batch_first=batch_first, padding_value=7.0, total_length=6)
    assert_close(g_out, t_out)
    assert g_len.tolist() == t_len.tolist() and g_len.dtype == graphc.int64
    cot = randn(*t_out.shape, seed=3)
    (g_out * graphc.tensor(cot)).sum().backward()
    (t_out * torch.tensor(cot)).sum().backward()
    assert_close(g_in.grad, t_in.grad)


def test_pack_sequence_sorted_and_unpack():
    arrays = _seqs([4, 3, 3, 1])
    g = rnn.pack_sequence([graphc.tensor(a) for a in arrays])
    t = trnn.pack_sequence([torch.tensor(a) for a in arrays])
    assert g.sorted_indices is None and g.unsorted_indices is None
    assert_close(g.data, t.data)
    data, batch_sizes, _, _ = g  # a named tuple, as in PyTorch
    assert batch_sizes.tolist() == [4, 3, 3, 1]
    for a, back in zip(arrays, rnn.unpack_sequence(g)):
        np.testing.assert_array_equal(back.numpy(), a)


def test_pack_errors_match_torch():
    x = graphc.zeros(5, 3, 2)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        rnn.pack_padded_sequence(x, [2, 5, 3])
    with pytest.raises(RuntimeError, match="greater than 0"):
        rnn.pack_padded_sequence(x, [5, 0, 3], enforce_sorted=False)
    with pytest.raises(ValueError, match="batch_size"):
        rnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(ValueError, match="total_length"):
        rnn.pad_packed_sequence(rnn.pack_padded_sequence(x, [5, 3, 2]), total_length=4)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layers_on_packed_input(kind, bidirectional):
    graphc.manual_seed(0)
    torch.manual_seed(0)
    t_layer = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional)
    g_layer = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional)
    copy_weights(g_layer, t_layer)
    padded = randn(5, 4, 3)
    dirs = 2 if bidirectional else 1
    h0 = randn(2 * dirs, 4, 4, seed=5)
    g_in = graphc.tensor(padded, requires_grad=True)
    t_in = torch.tensor(padded, requires_grad=True)
    g_hx = graphc.tensor(h0)
    t_hx = torch.tensor(h0)
    if kind == "LSTM":
        g_hx, t_hx = (g_hx, g_hx * 0.5), (t_hx, t_hx * 0.5)
    g_out, g_h = g_layer(rnn.pack_padded_sequence(g_in, LENGTHS, enforce_sorted=False), g_hx)
    t_out, t_h = t_layer(trnn.pack_padded_sequence(t_in, torch.tensor(LENGTHS), enforce_sorted=False), t_hx)
    assert isinstance(g_out, rnn.PackedSequence)
    assert g_out.batch_sizes.tolist() == t_out.batch_sizes.tolist()
    assert_close(g_out.data, t_out.data, what="packed output")
    g_states = g_h if kind == "LSTM" else (g_h,)
    t_states = t_h if kind == "LSTM" else (t_h,)
    for a, b in zip(g_states, t_states):
        assert_close(a, b, what="final state")
    g_pad, _ = rnn.pad_packed_sequence(g_out, batch_first=True)
    t_pad, _ = trnn.pad_packed_sequence(t_out, batch_first=True)
    g_loss = (g_pad * graphc.tensor(randn(*t_pad.shape, seed=7))).sum() + sum(s.sum() for s in g_states)
    t_loss = (t_pad * torch.tensor(randn(*t_pad.shape, seed=7))).sum() + sum(s.sum() for s in t_states)
    g_loss.backward()
    t_loss.backward()
    assert_close(g_in.grad, t_in.grad, what="input gradient")
    g_params = dict(g_layer.named_parameters())
    for name, param in t_layer.named_parameters():
        assert_close(g_params[name].grad, param.grad, what=f"gradient of {name}")


def test_packed_lstm_compiled_matches_eager():
    graphc.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)

    def run(x):
        packed = rnn.pack_padded_sequence(x, [2, 5, 3], batch_first=True, enforce_sorted=False)
        out, (h, _) = lstm(packed)
        padded, _ = rnn.pad_packed_sequence(out, batch_first=True)
        return padded.sum(2) + h[0].sum(1, keepdim=True)

    x = graphc.tensor(randn(3, 5, 3))
    expected = run(x).detach().numpy()
    compiled = graphc.compile(run, backend="interp")
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_packed_sequence_as_argument_of_a_compiled_module():
    # batch_sizes stay concrete; a new length pattern with the same packed
    # data shape ([8, 3] for lengths 5 + 3 and 4 + 4) must not reuse the
    # program traced for the other.
    graphc.manual_seed(0)
    gru = nn.GRU(3, 4, bidirectional=True)
    compiled = graphc.compile(gru, backend="interp")
    for lengths in ([5, 3], [4, 4], [5, 3]):
        seqs = [graphc.tensor(a) for a in _seqs(lengths)]
        packed = rnn.pack_sequence(seqs)
        want_out, want_h = gru(packed)
        for _ in range(2):
            out, h = compiled(packed)
            assert isinstance(out, rnn.PackedSequence)
            assert out.batch_sizes.tolist() == packed.batch_sizes.tolist()
            np.testing.assert_allclose(out.data.detach().numpy(), want_out.data.detach().numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(h.detach().numpy(), want_h.detach().numpy(), rtol=1e-5, atol=1e-6)
