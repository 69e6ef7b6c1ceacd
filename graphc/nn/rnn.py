"""Recurrent layers RNN, LSTM and GRU, unrolled over time from Tensor ops.

Parameter names, shapes, gate order (LSTM: i, f, g, o; GRU: r, z, n) and
the U(-1/sqrt(hidden), 1/sqrt(hidden)) initialization follow PyTorch, so
PyTorch weights load by name. The input projection of every time step is one
matmul; only the recurrent part runs step by step.
"""

from __future__ import annotations

import math

import graphc
import graphc.nn.functional as F
from graphc.errors import InputShapeError
from graphc.nn import init
from graphc.nn.module import Module
from graphc.nn.parameter import Parameter
from graphc.nn.utils.rnn import PackedSequence, _index

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _suffix(layer: int, direction: int) -> str:
    """PyTorch's parameter-name suffix: '_l0', '_l0_reverse', '_l1', ..."""
    return f"_l{layer}" + ("_reverse" if direction else "")


class RNNBase(Module):
    """Shared parameters and the layer/direction loop of RNN, LSTM and GRU."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1]")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = _suffix(layer, direction)
                shapes = {
                    "weight_ih": (gate_size, layer_input),
                    "weight_hh": (gate_size, hidden_size),
                }
                if bias:
                    shapes.update({"bias_ih": (gate_size,), "bias_hh": (gate_size,)})
                for kind, shape in shapes.items():
                    setattr(self, kind + suffix, Parameter(graphc.empty(*shape)))
                    self._flat_weights_names.append(kind + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _weights(self, layer: int, direction: int):
        suffix = _suffix(layer, direction)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else ("weight_ih", "weight_hh")
        weights = [getattr(self, name + suffix) for name in names]
        return weights + [None] * (4 - len(weights))

    def _check_input(self, input) -> bool:
        """Validate the input; return True when it is unbatched (2-D)."""
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            raise InputShapeError(
                f"{self._get_name()}: expected input of shape (L, N, {self.input_size}) "
                f"{'(batch_first) (N, L, ...)' if self.batch_first else ''} or (L, {self.input_size}), "
                f"got input of shape {tuple(input.shape)}"
            )
        return input.dim() == 2

    def _initial_state(self, hx, batch: int, unbatched: bool, dtype):
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            return graphc.zeros(*expected, dtype=dtype, device=getattr(self, self._flat_weights_names[0]).device)
        if unbatched:
            hx = hx.unsqueeze(1)
        if tuple(hx.shape) != expected:
            raise ValueError(f"{self._get_name()}: expected hidden state of shape {expected}, got {tuple(hx.shape)}")
        return hx

    def _run(self, input, states):
        """Run all layers and directions. `input` is [L, N, features];
        `states` is a list of per-state tensors [layers*dirs, N, H]. Returns
        the last layer's output [L, N, dirs*H] and the final states."""
        directions = 2 if self.bidirectional else 1
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                initial = [state[index] for state in states]
                out, last = self._run_direction(
                    input,
                    initial,
                    self._weights(layer, direction),
                    reverse=direction == 1,
                )
                outputs.append(out)
                for slot, value in zip(finals, last):
                    slot.append(value)
            input = outputs[0] if directions == 1 else graphc.cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                input = F.dropout(input, self.dropout, True)
        return input, [graphc.stack(slot, 0) for slot in finals]

    def _run_direction(self, input, state, weights, reverse: bool):
        w_ih, w_hh, b_ih, b_hh = weights
        steps = input.shape[0]
        projected = F.linear(input, w_ih, b_ih)  # [L, N, gates*H], all steps at once
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        outputs = [None] * steps
        for t in order:
            state = self._cell(projected[t], state, w_hh, b_hh)
            outputs[t] = state[0]
        return graphc.stack(outputs, 0), state

    def _cell(self, x_proj, state, w_hh, b_hh):
        raise NotImplementedError

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        unbatched = self._check_input(input)
        if unbatched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        states = self._initial_states(hx, input.shape[1], unbatched, input.dtype)
        output, finals = self._run(input, states)
        if unbatched:
            output = output.squeeze(1)
            finals = [f.squeeze(1) for f in finals]
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, finals[0] if len(finals) == 1 else tuple(finals)

    def _initial_states(self, hx, batch, unbatched, dtype):
        return [self._initial_state(hx, batch, unbatched, dtype)]

    # -- packed sequences -------------------------------------------------------

    def _forward_packed(self, packed, hx):
        """A PackedSequence in, a PackedSequence out; the final states hold
        each sequence's state after its own last step, in the caller's
        batch order."""
        data = packed.data
        if data.dim() != 2 or data.shape[-1] != self.input_size:
            raise InputShapeError(
                f"{self._get_name()}: expected packed data of shape (*, {self.input_size}), got {tuple(data.shape)}"
            )
        sizes = [int(n) for n in packed.batch_sizes.tolist()]
        if hx is not None and packed.sorted_indices is not None:
            # hx is in the caller's order; the packed batch is longest first.
            order = _index(packed.sorted_indices, data.device)
            hx = tuple(h.index_select(1, order) for h in hx) if isinstance(hx, tuple) else hx.index_select(1, order)
        states = self._initial_states(hx, sizes[0], False, data.dtype)
        directions = 2 if self.bidirectional else 1
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                out, last = self._run_packed_direction(
                    data,
                    sizes,
                    [state[index] for state in states],
                    self._weights(layer, direction),
                    reverse=direction == 1,
                )
                outputs.append(out)
                for slot, value in zip(finals, last):
                    slot.append(value)
            data = outputs[0] if directions == 1 else graphc.cat(outputs, 1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                data = F.dropout(data, self.dropout, True)
        finals = [graphc.stack(slot, 0) for slot in finals]
        if packed.unsorted_indices is not None:
            order = _index(packed.unsorted_indices, data.device)
            finals = [f.index_select(1, order) for f in finals]
        output = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        return output, finals[0] if len(finals) == 1 else tuple(finals)

    def _run_packed_direction(self, data, sizes, state, weights, reverse: bool):
        """One direction over packed rows. Sequences are sorted longest
        first, so at step t the running ones are the first sizes[t] rows of
        the state; the others keep their state (their final one, or in
        reverse the initial one they have not started from yet)."""
        w_ih, w_hh, b_ih, b_hh = weights
        projected = F.linear(data, w_ih, b_ih)
        starts = [0]
        for n in sizes:
            starts.append(starts[-1] + n)
        order = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
        outputs = [None] * len(sizes)
        for t in order:
            n = sizes[t]
            running = [s[:n] for s in state]
            new = self._cell(projected[starts[t] : starts[t] + n], running, w_hh, b_hh)
            outputs[t] = new[0]
            if n < state[0].shape[0]:
                new = [graphc.cat([a, s[n:]], 0) for a, s in zip(new, state)]
            state = new
        return graphc.cat(outputs, 0), state

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


def _recurrent(h, w_hh, b_hh):
    out = h.matmul(w_hh.t())
    return out + b_hh if b_hh is not None else out


# One time step of each kind, from the input's projection x W_ih^T + b_ih
# (batched, [N, gates * hidden]); shared by the layers and the cells.


def _rnn_step(x_proj, h, w_hh, b_hh, nonlinearity: str):
    pre = x_proj + _recurrent(h, w_hh, b_hh)
    return graphc.tanh(pre) if nonlinearity == "tanh" else F.relu(pre)


def _lstm_step(x_proj, h, c, w_hh, b_hh):
    gates = x_proj + _recurrent(h, w_hh, b_hh)
    size = h.shape[-1]
    i = F.sigmoid(gates[:, 0:size])
    f = F.sigmoid(gates[:, size : 2 * size])
    g = graphc.tanh(gates[:, 2 * size : 3 * size])
    o = F.sigmoid(gates[:, 3 * size : 4 * size])
    c = f * c + i * g
    return o * graphc.tanh(c), c


def _gru_step(x_proj, h, w_hh, b_hh):
    recurrent = _recurrent(h, w_hh, b_hh)
    size = h.shape[-1]
    r = F.sigmoid(x_proj[:, 0:size] + recurrent[:, 0:size])
    z = F.sigmoid(x_proj[:, size : 2 * size] + recurrent[:, size : 2 * size])
    n = graphc.tanh(x_proj[:, 2 * size :] + r * recurrent[:, 2 * size :])
    return (1.0 - z) * n + z * h


class RNN(RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )
        self.nonlinearity = nonlinearity

    def _cell(self, x_proj, state, w_hh, b_hh):
        return [_rnn_step(x_proj, state[0], w_hh, b_hh, self.nonlinearity)]


class LSTM(RNNBase):
    """LSTM with gates (i, f, g, o); returns output, (h_n, c_n)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ):
        if proj_size:
            raise NotImplementedError("LSTM: proj_size is not supported")
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )

    def _initial_states(self, hx, batch, unbatched, dtype):
        if hx is None:
            return [self._initial_state(None, batch, unbatched, dtype) for _ in range(2)]
        h0, c0 = hx
        return [
            self._initial_state(h0, batch, unbatched, dtype),
            self._initial_state(c0, batch, unbatched, dtype),
        ]

    def _cell(self, x_proj, state, w_hh, b_hh):
        return list(_lstm_step(x_proj, state[0], state[1], w_hh, b_hh))


class GRU(RNNBase):
    """GRU with gates (r, z, n): n = tanh(x_n + r * (h W_hn^T + b_hn)),
    h' = (1 - z) * n + z * h."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )

    def _cell(self, x_proj, state, w_hh, b_hh):
        return [_gru_step(x_proj, state[0], w_hh, b_hh)]


# ---------------------------------------------------------------------------
# cells: one time step, the loop is the user's


class RNNCellBase(Module):
    """Parameters weight_ih [gates * hidden, input], weight_hh
    [gates * hidden, hidden], bias_ih, bias_hh (PyTorch's names, shapes and
    U(-1/sqrt(hidden), 1/sqrt(hidden)) initialization) and input checks."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(graphc.empty(gates * hidden_size, input_size))
        self.weight_hh = Parameter(graphc.empty(gates * hidden_size, hidden_size))
        if bias:
            self.bias_ih = Parameter(graphc.empty(gates * hidden_size))
            self.bias_hh = Parameter(graphc.empty(gates * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _prepare(self, input, hx, count: int):
        """(input as [N, input_size], the `count` states as [N, hidden],
        whether the input was unbatched)."""
        if input.dim() not in (1, 2):
            raise ValueError(f"{self._get_name()}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise InputShapeError(
                f"{self._get_name()}: input has inconsistent input_size: got {input.shape[-1]} "
                f"expected {self.input_size} (input of shape {tuple(input.shape)})"
            )
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            states = [graphc.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)] * count
        else:
            states = list(hx) if count > 1 else [hx]
            want = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
            for h in states:
                if tuple(h.shape) != want:
                    raise InputShapeError(
                        f"{self._get_name()}: expected hidden state of shape {want} for input of shape "
                        f"{tuple(input.shape)}, got {tuple(h.shape)}"
                    )
            if unbatched:
                states = [h.unsqueeze(0) for h in states]
        return x, states, unbatched

    def _projection(self, x):
        out = x.matmul(self.weight_ih.t())
        return out + self.bias_ih if self.bias_ih is not None else out

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        return text


class RNNCell(RNNCellBase):
    """One Elman RNN step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._prepare(input, hx, 1)
        out = _rnn_step(self._projection(x), h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o); returns (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias, 4)

    def forward(self, input, hx=None):
        x, (h, c), unbatched = self._prepare(input, hx, 2)
        h, c = _lstm_step(self._projection(x), h, c, self.weight_hh, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias, 3)

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._prepare(input, hx, 1)
        out = _gru_step(self._projection(x), h, self.weight_hh, self.bias_hh)
        return out.squeeze(0) if unbatched else out
