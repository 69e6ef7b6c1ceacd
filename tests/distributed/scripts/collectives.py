"""Every collective on every rank against numpy, run by test_collectives.py
under `graphc run -n 2`; also the error messages that name rank and op.
Exits non-zero (and aborts the job) on the first mismatch."""

import numpy as np

import graphc
import graphc.distributed as dist
from graphc.errors import DistributedError


def rank_data(r: int, shape, dtype) -> np.ndarray:
    """What rank r contributes: different on every rank, known to all."""
    rng = np.random.default_rng(10 + r)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(-5, 6, shape).astype(dtype)


NUMPY_REDUCE = {
    dist.ReduceOp.SUM: lambda xs: np.sum(xs, axis=0),
    dist.ReduceOp.AVG: lambda xs: np.mean(xs, axis=0),
    dist.ReduceOp.PRODUCT: lambda xs: np.prod(xs, axis=0),
    dist.ReduceOp.MIN: lambda xs: np.min(xs, axis=0),
    dist.ReduceOp.MAX: lambda xs: np.max(xs, axis=0),
}


def check(name, got, want, rtol=1e-6) -> None:
    got = got.numpy() if hasattr(got, "numpy") else got
    if got.dtype == np.bool_ or np.dtype(got.dtype).kind in "iu":
        ok = np.array_equal(got, want)
    else:
        ok = np.allclose(got, want, rtol=rtol, atol=1e-6)
    if not ok:
        raise AssertionError(f"rank {dist.get_rank()}: {name}: got {got}, want {want}")


def expect_error(name, fn, *fragments) -> None:
    try:
        fn()
    except (DistributedError, ValueError, TypeError) as e:
        for f in fragments:
            assert f in str(e), f"{name}: {f!r} not in {e}"
        return
    raise AssertionError(f"{name}: no error")


def main() -> None:
    dist.init_process_group(backend="mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized() and dist.is_available() and dist.get_backend() == "mpi"
    everyone = range(n)
    for dtype in (np.float32, np.float64, np.int64, np.int32):
        for op, ref in NUMPY_REDUCE.items():
            if op is dist.ReduceOp.AVG and np.dtype(dtype).kind != "f":
                continue
            t = graphc.from_numpy(rank_data(r, (3, 4), dtype))
            dist.all_reduce(t, op=op)
            want = ref(np.stack([rank_data(k, (3, 4), dtype) for k in everyone])).astype(dtype)
            check(f"all_reduce {op} {np.dtype(dtype).name}", t, want)
    # bool sums are logical or (torch's rule); float16 goes through float32
    t = graphc.from_numpy(rank_data(r, (5,), np.bool_))
    dist.all_reduce(t)
    check("all_reduce bool", t, np.any([rank_data(k, (5,), np.bool_) for k in everyone], axis=0))
    h = graphc.from_numpy(rank_data(r, (4,), np.float16))
    dist.all_reduce(h)
    check("all_reduce float16", h, np.sum([rank_data(k, (4,), np.float16) for k in everyone], axis=0), rtol=1e-3)
    # a non-contiguous tensor is reduced in place too
    base = graphc.from_numpy(rank_data(r, (4, 6), np.float32))
    view = base.t()
    dist.all_reduce(view)
    check("all_reduce transposed", view, np.sum([rank_data(k, (4, 6), np.float32) for k in everyone], axis=0).T)
    # async: a Work to wait on
    t = graphc.from_numpy(rank_data(r, (8,), np.float32))
    work = dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True)
    assert work.wait() and work.is_completed()
    check("all_reduce async", t, np.max([rank_data(k, (8,), np.float32) for k in everyone], axis=0))

    for src in everyone:
        t = graphc.from_numpy(rank_data(r, (2, 3), np.float32))
        dist.broadcast(t, src=src)
        check(f"broadcast from {src}", t, rank_data(src, (2, 3), np.float32))

    outs = [graphc.zeros(2, 2, dtype=graphc.int64) for _ in everyone]
    dist.all_gather(outs, graphc.from_numpy(rank_data(r, (2, 2), np.int64)))
    for k in everyone:
        check(f"all_gather [{k}]", outs[k], rank_data(k, (2, 2), np.int64))
    out = graphc.zeros(n * 3)
    dist.all_gather_into_tensor(out, graphc.from_numpy(rank_data(r, (3,), np.float32)))
    check("all_gather_into_tensor", out, np.concatenate([rank_data(k, (3,), np.float32) for k in everyone]))

    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX):
        inputs = [graphc.from_numpy(rank_data(r, (n, 3), np.float32)[k]) for k in everyone]
        out = graphc.zeros(3)
        dist.reduce_scatter(out, inputs, op=op)
        check(
            f"reduce_scatter {op}",
            out,
            NUMPY_REDUCE[op](np.stack([rank_data(k, (n, 3), np.float32)[r] for k in everyone])),
        )
        out = graphc.zeros(3)
        dist.reduce_scatter_tensor(out, graphc.from_numpy(rank_data(r, (n, 3), np.float32).reshape(-1)), op=op)
        check(
            f"reduce_scatter_tensor {op}",
            out,
            NUMPY_REDUCE[op](np.stack([rank_data(k, (n, 3), np.float32)[r] for k in everyone])),
        )
    dist.barrier()

    objects = [None] * n
    dist.all_gather_object(objects, {"rank": r, "name": f"r{r}"})
    assert objects == [{"rank": k, "name": f"r{k}"} for k in everyone], objects
    items = [f"from {r}", r] if r == n - 1 else [None, None]
    dist.broadcast_object_list(items, src=n - 1)
    assert items == [f"from {n - 1}", n - 1], items

    # errors name the op and the rank (raised before any message is sent)
    where = f"on rank {r} of {n}"
    expect_error(
        "avg int",
        lambda: dist.all_reduce(graphc.ones(2, dtype=graphc.int64), op=dist.ReduceOp.AVG),
        "all_reduce " + where,
        "floating-point",
    )
    expect_error("bad src", lambda: dist.broadcast(graphc.ones(2), src=n), "broadcast " + where, "src")
    expect_error(
        "gather list",
        lambda: dist.all_gather([graphc.ones(2)], graphc.ones(2)),
        "all_gather " + where,
        f"world_size={n}",
    )
    expect_error(
        "gather shape",
        lambda: dist.all_gather([graphc.ones(3)] * n, graphc.ones(2)),
        "all_gather " + where,
        "tensor_list[0]",
    )
    expect_error("op type", lambda: dist.all_reduce(graphc.ones(2), op="sum"), "all_reduce " + where, "ReduceOp")
    expect_error("twice", lambda: dist.init_process_group("mpi"), "twice")

    @graphc.compile
    def reduce_in_compile(x):
        y = x * 2
        dist.all_reduce(y)
        return y

    expect_error(
        "compile",
        lambda: [reduce_in_compile(graphc.ones(2)) for _ in range(2)],
        "all_reduce " + where,
        "graphc.compile",
    )
    dist.destroy_process_group()
    assert not dist.is_initialized()
    if r == 0:
        print("collectives ok")


if __name__ == "__main__":
    main()
