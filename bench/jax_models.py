"""JAX peers of the real-model workloads (bench/model_workloads.py).

Each function takes the torch model whose initial weights every peer
starts from and the workload's numpy data, and returns a zero-argument
callable running one jitted step (the whole training step: forward,
gradients and the optimizer update, as torch's optimizers compute it) and
returning its loss, or the jitted forward returning the logits.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax


def _params(torch_model) -> dict:
    return {k: jnp.asarray(v.detach().numpy()) for k, v in torch_model.state_dict().items()}


def _cross_entropy(logits, y):
    logp = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))


def _runner(step, state, *args):
    """Call `step(*state, *args)`, keep its new state, return its output."""

    def run():
        *new, out = step(*state, *args)
        state[:] = new
        return out.block_until_ready()

    return run


# ---------------------------------------------------------------------------
# ResNet-18


def _conv(x, w, stride=1, padding=0):
    return lax.conv_general_dilated(
        x, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW")
    )


def _batch_norm(p, stats, name, x, train):
    """BatchNorm2d; in train mode batch statistics, and the running ones
    updated as torch does (momentum 0.1, unbiased variance)."""
    shape = (1, -1, 1, 1)
    if train:
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
        n = x.size / x.shape[1]
        stats[name + ".running_mean"] = 0.9 * stats[name + ".running_mean"] + 0.1 * mean
        stats[name + ".running_var"] = 0.9 * stats[name + ".running_var"] + 0.1 * var * n / (n - 1)
    else:
        mean, var = stats[name + ".running_mean"], stats[name + ".running_var"]
    x = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + 1e-5)
    return x * p[name + ".weight"].reshape(shape) + p[name + ".bias"].reshape(shape)


def _resnet_forward(p, stats, x, train):
    stats = dict(stats)
    relu = jax.nn.relu
    x = relu(_batch_norm(p, stats, "bn1", _conv(x, p["conv1.weight"], 2, 3), train))
    x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), [(0, 0), (0, 0), (1, 1), (1, 1)])
    for layer in range(1, 5):
        for block in range(2):
            name = f"layer{layer}.{block}"
            stride = 2 if layer > 1 and block == 0 else 1
            identity = x
            if name + ".downsample.0.weight" in p:
                identity = _conv(x, p[name + ".downsample.0.weight"], stride)
                identity = _batch_norm(p, stats, name + ".downsample.1", identity, train)
            out = relu(_batch_norm(p, stats, name + ".bn1", _conv(x, p[name + ".conv1.weight"], stride, 1), train))
            out = _batch_norm(p, stats, name + ".bn2", _conv(out, p[name + ".conv2.weight"], 1, 1), train)
            x = relu(out + identity)
    x = x.mean((2, 3))
    return x @ p["fc.weight"].T + p["fc.bias"], stats


def resnet18(torch_model, arrays, train: bool):
    everything = _params(torch_model)
    learned = {k for k, _ in torch_model.named_parameters()}
    params = {k: v for k, v in everything.items() if k in learned}
    stats = {k: v for k, v in everything.items() if k not in learned and not k.endswith("num_batches_tracked")}
    x, y = jnp.asarray(arrays[0]), jnp.asarray(arrays[1])
    if not train:
        forward = jax.jit(lambda p, s, x: _resnet_forward(p, s, x, False)[0])
        return lambda: forward(params, stats, x).block_until_ready()

    def loss_fn(p, s, x, y):
        logits, s = _resnet_forward(p, s, x, True)
        return _cross_entropy(logits, y), s

    @jax.jit
    def step(p, s, buf, x, y):
        (loss, s), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, y)
        # SGD with momentum 0.9: the buffer starts at the first gradient.
        buf = jax.tree_util.tree_map(lambda b, g: 0.9 * b + g, buf, g)
        p = jax.tree_util.tree_map(lambda p, b: p - 0.001 * b, p, buf)
        return p, s, buf, loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return _runner(step, [params, stats, zeros], x, y)


# ---------------------------------------------------------------------------
# character GPT


def _layer_norm(p, name, x):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-5) * p[name + ".weight"] + p[name + ".bias"]


def _linear(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def _gpt_forward(p, idx, shape):
    batch, t = idx.shape
    d, heads = shape["d"], shape["heads"]
    x = p["tok_emb.weight"][idx] + p["pos_emb.weight"][jnp.arange(t)]
    causal = jnp.triu(jnp.ones((t, t), dtype=bool), 1)
    for i in range(shape["layers"]):
        b = f"blocks.{i}."
        a = _layer_norm(p, b + "ln1", x)
        qkv = a @ p[b + "attn.in_proj_weight"].T + p[b + "attn.in_proj_bias"]
        q, k, v = (z.reshape(batch, t, heads, d // heads).transpose(0, 2, 1, 3) for z in jnp.split(qkv, 3, -1))
        scores = jnp.where(causal, -jnp.inf, q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads))
        att = (jax.nn.softmax(scores, -1) @ v).transpose(0, 2, 1, 3).reshape(batch, t, d)
        x = x + _linear(p, b + "attn.out_proj", att)
        h = jax.nn.gelu(_linear(p, b + "mlp.0", _layer_norm(p, b + "ln2", x)), approximate=False)
        x = x + _linear(p, b + "mlp.2", h)
    return _linear(p, "head", _layer_norm(p, "ln_f", x))


def char_gpt(torch_model, arrays, shape, train: bool):
    params = _params(torch_model)
    x, y = jnp.asarray(arrays[0]), jnp.asarray(arrays[1])
    if not train:
        forward = jax.jit(lambda p, x: _gpt_forward(p, x, shape))
        return lambda: forward(params, x).block_until_ready()

    def loss_fn(p, x, y):
        logits = _gpt_forward(p, x, shape)
        return _cross_entropy(logits.reshape(-1, shape["vocab"]), y.reshape(-1))

    @jax.jit
    def step(p, m, v, t, x, y):
        # torch.optim.AdamW's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
        # weight decay 0.01 applied to every parameter.
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        step_size = 1e-3 / (1 - 0.9**t)
        root = jnp.sqrt(1 - 0.999**t)

        def update(p, m, v):
            p = p * (1 - 1e-3 * 0.01)
            return p - step_size * m / (jnp.sqrt(v) / root + 1e-8)

        return jax.tree_util.tree_map(update, p, m, v), m, v, t, loss

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return _runner(step, [params, zeros, zeros, jnp.float32(0)], x, y)


# ---------------------------------------------------------------------------
# LSTM word language model


def _lstm_layer(p, layer, xs, h, c):
    w_ih, w_hh = p[f"rnn.weight_ih_l{layer}"], p[f"rnn.weight_hh_l{layer}"]
    projected = xs @ w_ih.T + p[f"rnn.bias_ih_l{layer}"] + p[f"rnn.bias_hh_l{layer}"]

    def cell(carry, x_proj):
        h, c = carry
        i, f, g, o = jnp.split(x_proj + h @ w_hh.T, 4, -1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (h, c), out = lax.scan(cell, (h, c), projected)
    return out, h, c


def word_lstm(torch_model, arrays, shape, batch):
    params = _params(torch_model)
    x, y = jnp.asarray(arrays[0]), jnp.asarray(arrays[1])

    def loss_fn(p, h0, c0, x, y):
        out = p["encoder.weight"][x]
        hs, cs = [], []
        for layer in range(shape["nlayers"]):
            out, h, c = _lstm_layer(p, layer, out, h0[layer], c0[layer])
            hs.append(h)
            cs.append(c)
        logits = _linear(p, "decoder", out).reshape(-1, shape["ntoken"])
        return _cross_entropy(logits, y), (jnp.stack(hs), jnp.stack(cs))

    @jax.jit
    def step(p, h, c, x, y):
        # The hidden state carries over without gradient, as torch's
        # detach() does; gradients are clipped to norm 0.25, then SGD lr 20.
        (loss, (h, c)), g = jax.value_and_grad(loss_fn, has_aux=True)(p, h, c, x, y)
        norm = jnp.sqrt(sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(g)))
        scale = jnp.minimum(0.25 / (norm + 1e-6), 1.0)
        p = jax.tree_util.tree_map(lambda p, g: p - 20.0 * g * scale, p, g)
        return p, h, c, loss

    zeros = jnp.zeros((shape["nlayers"], batch, shape["nhid"]), jnp.float32)
    return _runner(step, [params, zeros, zeros], x, y)
