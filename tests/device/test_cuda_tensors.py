"""CUDA tensors on the simulated device runtime (fake_cuda.py): storage on
the device, transfers only where the user asks for them, eager ops as
cached single-op programs, autograd, modules, compiled programs, errors."""

import copy
import pickle

import numpy as np
import pytest
from fake_cuda import FakeBuffer, FakeCudaRuntime

import graphc
from graphc import nn
from graphc._device_storage import DeviceArray
from graphc.errors import DeviceError, ShapeError


def _delta(rt, before):
    now = rt.counts()
    return {k: now[k] - before[k] for k in now}


def test_cuda_tensor_data_lives_on_the_device(fake_cuda):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = fake_cuda.counts()
    x = graphc.from_numpy(host).to("cuda")
    assert isinstance(x._value, DeviceArray) and isinstance(x._value.buffer, FakeBuffer)
    assert x.device == graphc.device("cuda", 0) and x.is_cuda
    assert x.shape == (2, 3) and x.dtype is graphc.float32
    d = _delta(fake_cuda, before)
    assert d["htod"] == 1 and d["htod_bytes"] == host.nbytes and d["dtoh"] == 0
    # The device copy is independent of the host array.
    host[0, 0] = 100.0
    assert x.tolist()[0][0] == 0.0


def test_cpu_copies_exactly_once_and_numpy_refuses(fake_cuda):
    x = graphc.arange(5, dtype=graphc.float32, device="cuda")
    assert isinstance(x._value, DeviceArray)
    before = fake_cuda.counts()
    y = x.cpu()
    d = _delta(fake_cuda, before)
    assert d["dtoh"] == 1 and d["dtoh_bytes"] == 20 and d["htod"] == 0
    assert y.device == "cpu" and isinstance(y._value, np.ndarray)
    np.testing.assert_array_equal(y.numpy(), np.arange(5, dtype=np.float32))
    with pytest.raises(TypeError, match="can't convert cuda device type tensor to numpy. Use Tensor.cpu()"):
        x.numpy()
    with pytest.raises(TypeError, match="Tensor.cpu()"):
        np.asarray(x)
    # numpy(force=True) copies to the host, as torch's does.
    np.testing.assert_array_equal(x.numpy(force=True), np.arange(5))
    before = fake_cuda.counts()
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert x[2].item() == 2.0
    assert _delta(fake_cuda, before)["dtoh"] == 2


def test_repr_has_the_device_suffix(fake_cuda):
    x = graphc.tensor([[1.0, 2.5], [3.0, 4.0]], device="cuda")
    assert repr(x) == "tensor([[1.0000, 2.5000],\n        [3.0000, 4.0000]], device='cuda:0')"
    i = graphc.tensor([1, 2], device="cuda", dtype=graphc.int32)
    assert repr(i) == "tensor([1, 2], device='cuda:0', dtype=graphc.int32)"


def test_eager_ops_stay_on_the_device(fake_cuda):
    x = graphc.randn(4, 5, device="cuda")
    w = graphc.randn(5, 3, device="cuda")
    ref_x, ref_w = x.cpu(), w.cpu()
    before = fake_cuda.counts()
    y = ((x @ w).relu() * 2.0 + 1.0).softmax(-1).sum(0)
    z = graphc.cat([y, y.exp()]).reshape(2, 3).permute(1, 0)
    d = _delta(fake_cuda, before)
    assert d["dtoh"] == 0, "an eager op copied data to the host"
    assert d["runs"] >= 8
    # Only Python scalars (the 2.0 and 1.0 above, and constants inside ops)
    # are uploaded, one element each: never a tensor-sized operand.
    assert d["htod_bytes"] <= 8 * d["htod"]
    assert isinstance(z._value, DeviceArray) and z.device.type == "cuda"
    ry = ((ref_x @ ref_w).relu() * 2.0 + 1.0).softmax(-1).sum(0)
    rz = graphc.cat([ry, ry.exp()]).reshape(2, 3).permute(1, 0)
    np.testing.assert_allclose(z.cpu().numpy(), rz.numpy(), rtol=1e-6)


def test_single_op_programs_are_compiled_once_per_signature(fake_cuda):
    a = graphc.ones(3, device="cuda")
    b = graphc.full((3,), 2.0, device="cuda")
    _ = a + b
    n = len(fake_cuda.compiled)
    for _ in range(5):
        a = a + b
    assert len(fake_cuda.compiled) == n, "same op and operand types compiled again"
    assert a.tolist() == [11.0, 11.0, 11.0]
    _ = graphc.ones(4, device="cuda") + graphc.ones(4, device="cuda")
    assert len(fake_cuda.compiled) == n + 1  # new shape: one new program
    _ = a * b
    assert len(fake_cuda.compiled) == n + 2  # new op
    graph = fake_cuda.compiled[-1]
    assert [i.op.value for i in graph.inputs] == ["input", "input"] and len(graph.outputs) == 1
    assert graph.outputs[0].op.value == "mul"


def test_creation_functions_and_like_functions_place_on_the_device(fake_cuda):
    for t in (
        graphc.zeros(2, 2, device="cuda"),
        graphc.eye(3, device="cuda"),
        graphc.rand(3, device="cuda"),
        graphc.zeros_like(graphc.ones(2, device="cuda")),
    ):
        assert isinstance(t._value, DeviceArray) and t.device == "cuda:0"
    assert graphc.eye(2, device="cuda").tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_in_place_ops_write_into_the_same_device_buffer(fake_cuda):
    x = graphc.zeros(3, device="cuda")
    buf = x._value.buffer
    alias = x.detach()
    x.add_(2.0)
    x[1] = 7.0
    assert x._value.buffer is buf
    assert x.tolist() == [2.0, 7.0, 2.0] and alias.tolist() == [2.0, 7.0, 2.0]
    c = x.clone()
    c.zero_()
    assert c._value.buffer is not buf and x.tolist() == [2.0, 7.0, 2.0]


def test_mixing_devices_raises_device_error(fake_cuda):
    x = graphc.ones(2, device="cuda")
    with pytest.raises(DeviceError, match="same device"):
        x + graphc.ones(2)
    with pytest.raises(DeviceError):
        graphc.ones(2, 2) @ graphc.ones(2, 2, device="cuda")
    # A CPU 0-d tensor mixes with CUDA tensors, as in torch.
    assert (x * graphc.tensor(3.0)).tolist() == [3.0, 3.0]


def test_shape_errors_on_the_device_name_the_user_line(fake_cuda):
    with pytest.raises(ShapeError, match="test_cuda_tensors.py"):
        graphc.ones(2, 3, device="cuda") @ graphc.ones(2, 3, device="cuda")


def test_autograd_on_device_matches_the_cpu(fake_cuda):
    graphc.manual_seed(1)
    w = graphc.randn(4, 3, requires_grad=True)
    x = graphc.randn(5, 4)
    wc = w.detach().to("cuda").requires_grad_()
    xc = x.to("cuda")
    ((x @ w).tanh() ** 2).mean().backward()
    before = fake_cuda.counts()
    ((xc @ wc).tanh() ** 2).mean().backward()
    assert _delta(fake_cuda, before)["dtoh"] == 0
    assert wc.grad.device == "cuda:0" and isinstance(wc.grad._value, DeviceArray)
    np.testing.assert_allclose(wc.grad.cpu().numpy(), w.grad.numpy(), rtol=1e-5)


def test_gradient_returns_to_the_device_the_tensor_came_from(fake_cuda):
    w = graphc.tensor([1.0, 2.0], requires_grad=True)
    wc = w.to("cuda")
    assert wc.requires_grad and wc.grad_fn is not None and wc.device.type == "cuda"
    (wc * wc).sum().backward()
    assert w.grad.device == "cpu" and isinstance(w.grad._value, np.ndarray)
    assert w.grad.tolist() == [2.0, 4.0]
    back = wc.cpu()  # and back again
    assert back.device == "cpu" and back.tolist() == [1.0, 2.0]


def test_module_to_moves_every_parameter_and_buffer_in_place(fake_cuda):
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    params = list(m.parameters())
    host = [p.detach().numpy().copy() for p in params]
    assert m.cuda() is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    for p, h in zip(m.parameters(), host):
        assert isinstance(p._value, DeviceArray) and p.device == "cuda:0" and p.requires_grad
        np.testing.assert_array_equal(p.detach().cpu().numpy(), h)
    for b in m.buffers():
        assert isinstance(b._value, DeviceArray)
    x = graphc.randn(5, 3)
    out = m(x.cuda())
    assert out.device == "cuda:0"
    m.to("cpu")
    assert all(isinstance(p._value, np.ndarray) and p.device == "cpu" for p in m.parameters())
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    np.testing.assert_allclose(m(x).detach().numpy(), out.detach().cpu().numpy(), rtol=1e-5)


def _train(device, rt=None, steps=4):
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = graphc.optim.Adam(model.parameters(), lr=1e-2)
    model.to(device)

    @graphc.compile
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    x = graphc.randn(32, 6).to(device)
    y = graphc.randint(0, 3, (32,)).to(device)
    losses, deltas = [], []
    for _ in range(steps):
        before = rt.counts() if rt is not None else None
        loss = step(x, y)
        if rt is not None:
            deltas.append(_delta(rt, before))
        losses.append(loss)
    return model, opt, step, losses, deltas


def test_compiled_training_step_on_cuda_keeps_state_on_the_device(fake_cuda):
    model_c, _, _, losses_c, _ = _train("cpu")
    model, opt, step, losses, deltas = _train("cuda", fake_cuda)
    params = list(model.parameters())
    buffers = [p._value.buffer for p in params]
    # The first call runs eagerly, the second traces and compiles once;
    # later calls run that one program.
    (entry,) = [e for entries in step._cache.values() for e in entries]
    assert entry.device == "cuda:0"
    assert all(d["runs"] == 1 for d in deltas[2:])
    trained = [p.detach().cpu().numpy() for p in params]
    n_compiled = len(fake_cuda.compiled)
    loss = step(*[graphc.randn(32, 6).cuda(), graphc.randint(0, 3, (32,)).cuda()])
    assert len(fake_cuda.compiled) == n_compiled and loss.device == "cuda:0"
    # Parameters, gradients and Adam's moments are device storage, updated
    # in place; only 0-d CPU state (RNG state, step counters) crosses.
    assert [p._value.buffer for p in params] == buffers
    for p in params:
        assert isinstance(p.grad._value, DeviceArray)
        state = opt.state[p]
        assert isinstance(state["exp_avg"]._value, DeviceArray)
        assert isinstance(state["exp_avg_sq"]._value, DeviceArray)
        assert state["step"].device == "cpu"
    for d in deltas[2:]:
        assert d["dtoh_bytes"] <= 8 * d["dtoh"] and d["htod_bytes"] <= 8 * d["htod"]
    # Same numbers as the CPU run (llvm backend), from the same seed.
    np.testing.assert_allclose([loss.item() for loss in losses], [loss.item() for loss in losses_c], rtol=1e-4)
    for p, q in zip(trained, model_c.parameters()):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_compiled_program_retraces_after_the_module_moves(fake_cuda):
    model = nn.Linear(3, 2)
    fn = graphc.compile(model)
    x = graphc.ones(4, 3)
    with graphc.no_grad():
        for _ in range(3):
            cpu_out = fn(x)
        assert [e.device for es in fn._cache.values() for e in es] == [None]
        model.cuda()
        for _ in range(3):
            out = fn(x.cuda())
    assert out.device == "cuda:0"
    assert any(e.device == "cuda:0" for es in fn._cache.values() for e in es)
    np.testing.assert_allclose(out.detach().cpu().numpy(), cpu_out.detach().numpy(), rtol=1e-6)


def test_cpu_backend_on_cuda_tensors_is_a_device_error(fake_cuda):
    fn = graphc.compile(lambda x: x * 2, backend="interp")
    x = graphc.ones(2, device="cuda")
    fn(x)  # eager first call
    with pytest.raises(DeviceError, match="backend 'interp' runs on the CPU"):
        fn(x)


def test_out_of_memory_surfaces_as_graphc_error(monkeypatch):
    rt = FakeCudaRuntime(memory_limit=1024)
    monkeypatch.setattr(graphc.cuda, "_runtime", rt)
    small = graphc.ones(16, device="cuda")
    with pytest.raises(graphc.cuda.OutOfMemoryError, match="out of GPU memory") as err:
        graphc.zeros(1024, device="cuda")
    assert isinstance(err.value, MemoryError)
    with pytest.raises(MemoryError):
        graphc.ones(200, device="cuda") + graphc.ones(200, device="cuda")  # 800 B each: the sum does not fit
    assert small.tolist() == [1.0] * 16


def test_device_memory_is_returned_when_tensors_die(fake_cuda):
    base = fake_cuda.live_bytes
    x = graphc.ones(1000, device="cuda")
    y = (x * 3).sum()
    assert fake_cuda.live_bytes >= base + 4000
    del x, y
    import gc

    gc.collect()
    assert fake_cuda.live_bytes == base


def test_copy_and_pickle_keep_the_device(fake_cuda):
    x = graphc.tensor([1.0, 2.0], device="cuda")
    c = copy.deepcopy(x)
    assert isinstance(c._value, DeviceArray) and c._value.buffer is not x._value.buffer
    assert c.tolist() == [1.0, 2.0]
    p = pickle.loads(pickle.dumps(x))
    assert p.device == "cuda:0" and isinstance(p._value, DeviceArray) and p.tolist() == [1.0, 2.0]


def test_without_a_runtime_cuda_is_unavailable():
    if graphc.cuda.is_available():
        pytest.skip("a real GPU is present")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        graphc.ones(2).cuda()


def test_save_copies_cuda_tensors_to_the_host(fake_cuda, tmp_path):
    path = tmp_path / "ckpt.pt"
    graphc.save({"w": graphc.tensor([1.5, 2.5], device="cuda")}, path)
    loaded = graphc.load(path)
    assert loaded["w"].device == "cpu" and loaded["w"].tolist() == [1.5, 2.5]


def test_layers_that_build_helper_tensors_run_on_the_device(fake_cuda):
    # Pooling tables, one_hot's classes, RNN initial states and nn.init
    # values are made on the input's device.
    graphc.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    img = graphc.randn(2, 3, 8, 8)
    ref = model(img)
    model.cuda()
    nn.init.xavier_uniform_(model[7].weight)
    assert isinstance(model[7].weight._value, DeviceArray)
    model[7].weight.data.copy_(graphc.ones(2, 4))  # copy_ crosses devices
    ref = model.cpu()(img)
    out = model.cuda()(img.cuda())
    out.sum().backward()
    assert model[0].weight.grad.device == "cuda:0"
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    hot = nn.functional.one_hot(graphc.tensor([0, 2], device="cuda"))
    assert hot.device == "cuda:0" and hot.tolist() == [[1, 0, 0], [0, 0, 1]]
    output, h = nn.GRU(3, 4).cuda()(graphc.randn(5, 2, 3).cuda())
    assert output.device == "cuda:0" and h.device == "cuda:0"
