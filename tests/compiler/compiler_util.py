"""Compile a graph with the LLVM backend and compare with the interpreter."""

import numpy as np

from graphc.runtime import interpreter


def assert_matches(graph, arrays, rtol=1e-5, atol=1e-6, aliases=None):
    """Run graph compiled and interpreted; outputs must agree in dtype,
    shape and value. Returns the executable."""
    import graphc.runtime.cpu as cpu

    exe = cpu.compile_cpu(graph, aliases)
    want = interpreter.run(graph, [a.copy() for a in arrays])
    got = exe([a.copy() for a in arrays])
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype} != {w.dtype}"
        assert g.shape == w.shape, f"output {i}: shape {g.shape} != {w.shape}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")
    return exe
