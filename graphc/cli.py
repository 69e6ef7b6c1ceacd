"""The `graphc` command line.

    graphc ir FILE.py[:NAME] --input-shape 1,1,28,28 [--stage STAGE] [--grad] [--dot OUT.dot]
    graphc demo [--root DIR] [--epochs N] [--backend llvm|interp|eager]
    graphc bench [--quick] [--plot OUT.png] [--device cpu|cuda]
    graphc export FILE.py[:NAME] --input-shape 1,3,32,32 -o OUT.onnx [--opset 17] [--dynamic-batch]
    graphc run -n N [--hostfile FILE] script.py [args]   (data-parallel, over MPI)
    graphc profile SCRIPT.py|cnn|mlp [--steps N] [--threads N] [--sort-by KEY] [--row-limit N] [--trace OUT.json]

`ir` prints the IR of a module or function at one stage of the pipeline:
traced (as recorded), autodiff (the joint forward+backward graph; implies
--grad), optimized (after simplification, folding, CSE), fused (the kernels),
plan (the memory plan with peak bytes), llvm (generated LLVM IR), asm (host
assembly), cuda (generated CUDA C).

`profile` prints graphc.profiler's table for a script run under the
profiler or for steps of a built-in training workload (docs/profiler.md).

`export` writes the module or function as an ONNX model (graphc.onnx.export),
traced in eval mode on random inputs of the given shapes.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
from pathlib import Path

STAGES = ("traced", "autodiff", "optimized", "fused", "plan", "llvm", "asm", "cuda")


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(",") if d.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"bad shape {text!r}: expected comma-separated integers like 1,1,28,28"
        ) from err


def _load_target(spec: str):
    """Load FILE.py[:NAME]; NAME defaults to the only nn.Module subclass, or
    the only function, defined in the file."""
    path, _, name = spec.partition(":")
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"graphc ir: no such file: {path}")
    mod_spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        mod_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    if name:
        if not hasattr(module, name):
            raise SystemExit(f"graphc ir: {path} defines no {name!r}")
        return name, getattr(module, name)
    import graphc.nn as nn

    defined = [
        (k, v)
        for k, v in vars(module).items()
        if getattr(v, "__module__", None) == module.__name__ and (inspect.isclass(v) or inspect.isfunction(v))
    ]
    modules = [(k, v) for k, v in defined if inspect.isclass(v) and issubclass(v, nn.Module)]
    candidates = modules or [(k, v) for k, v in defined if inspect.isfunction(v)]
    if len(candidates) != 1:
        names = ", ".join(k for k, _ in candidates) or "none"
        raise SystemExit(f"graphc ir: name the module or function to trace as {path}:NAME (candidates: {names})")
    return candidates[0]


def _instantiate(name, obj):
    if inspect.isclass(obj):
        try:
            return obj()
        except TypeError as e:
            raise SystemExit(f"graphc ir: cannot build {name}() without arguments ({e}); wrap it in a function") from e
    return obj


def _check_input_count(args, name: str, fn, count: int) -> None:
    """Exit with a usage error (status 2) unless `count` input shapes fit
    the positional parameters of `fn` (a module's forward or a function)."""
    try:
        params = inspect.signature(fn.forward if hasattr(fn, "forward") else fn).parameters.values()
    except (TypeError, ValueError):
        return  # no signature to check against (a builtin)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in positional if p.default is p.empty]
    unbounded = any(p.kind is p.VAR_POSITIONAL for p in params)
    if count < len(required):
        missing = ", ".join(required[count:])
        args.parser.error(
            f"{name} takes {len(required)} input(s) ({', '.join(required)}); give the shape of each with "
            f"--input-shape (missing: {missing}), e.g. --input-shape 1,1,28,28"
        )
    if count > len(positional) and not unbounded:
        args.parser.error(f"{name} takes {len(positional)} input(s) but {count} --input-shape were given")


def cmd_ir(args) -> int:
    import graphc

    name, obj = _load_target(args.target)
    fn = _instantiate(name, obj)
    shapes = args.input_shape or []
    _check_input_count(args, name, fn, len(shapes))
    graphc.manual_seed(0)
    inputs = [graphc.randn(*shape) for shape in shapes]
    stage = args.stage
    grad = args.grad or stage == "autodiff"
    try:
        graph = graphc.trace(fn, *inputs)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        # Mostly shapes that do not fit the model: say so without a traceback.
        given = " ".join(",".join(map(str, shape)) for shape in shapes) or "none"
        raise SystemExit(
            f"graphc ir: tracing {name} with input shapes {given} failed: {type(err).__name__}: {err}"
        ) from err
    graph.name = name
    if grad:
        graph = _with_grad(graph, args.reduce)
    if stage in ("traced", "autodiff"):
        text = str(graph)
    elif stage == "optimized":
        from graphc.passes.pipeline import optimize

        text = str(optimize(graph))
    elif stage == "cuda":
        from graphc.runtime.cuda import explain as cuda_explain

        text = cuda_explain(graph)["cuda"]
    else:
        from graphc.runtime.cpu import explain

        text = explain(graph)[stage]
    print(text)
    if args.dot:
        from graphc.ir.dot import to_dot

        Path(args.dot).write_text(to_dot(graph))
        print(f"# wrote {args.dot}", file=sys.stderr)
    return 0


def _with_grad(graph, reduce: str | None):
    from graphc.ir.graph import node
    from graphc.ir.ops import Op
    from graphc.passes.autodiff import grad

    out = graph.outputs[0]
    if out.shape != ():
        if reduce is None:
            raise SystemExit(
                f"graphc ir: --grad needs a scalar output, but @{graph.name} returns {out.type}; "
                "trace a function that returns a loss, or pass --reduce sum|mean"
            )
        total = node(Op.SUM, out, axes=tuple(range(out.ndim)))
        if reduce == "mean":
            from graphc.ir.graph import const

            total = node(Op.DIV, total, const(float(out.type.numel), out.dtype))
        graph = graph.replace(outputs=(total,) + graph.outputs[1:])
    return grad(graph)


def cmd_export(args) -> int:
    import graphc
    from graphc.onnx import ExportError

    name, obj = _load_target(args.target)
    fn = _instantiate(name, obj)
    shapes = args.input_shape or []
    _check_input_count(args, name, fn, len(shapes))
    graphc.manual_seed(0)
    if args.input_dtype == "float32":
        inputs = [graphc.randn(*shape) for shape in shapes]
    else:
        # Integer inputs are token ids or class labels: small non-negative values.
        inputs = [graphc.randint(0, 2, shape, dtype=getattr(graphc, args.input_dtype)) for shape in shapes]
    input_names = [f"input{i}" for i in range(len(inputs))] if len(inputs) > 1 else ["input"]
    dynamic_axes = None
    if args.dynamic_batch:
        dynamic_axes = {n: {0: "batch"} for n in input_names}
        dynamic_axes["output"] = {0: "batch"}
    try:
        model = graphc.onnx.export(
            fn,
            tuple(inputs),
            args.output,
            input_names=input_names,
            output_names=["output"],
            dynamic_axes=dynamic_axes,
            opset_version=args.opset,
        )
    except (ExportError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise SystemExit(f"graphc export: exporting {name} failed: {type(err).__name__}: {err}") from err
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"wrote {args.output}: {len(model.graph.node)} nodes ({', '.join(ops)}), opset {args.opset}")
    return 0


def cmd_demo(args) -> int:
    from graphc.demo import main as demo_main

    return demo_main(args)


def cmd_bench(args) -> int:
    root = Path(__file__).resolve().parents[1] / "bench"
    if not (root / "suite.py").is_file():
        raise SystemExit(f"graphc bench: the benchmark suite is not at {root}/suite.py (run from a source checkout)")
    sys.path.insert(0, str(root))
    import suite  # type: ignore

    return suite.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphc", description="graphc: a small deep learning compiler")
    sub = parser.add_subparsers(dest="command", required=True)

    ir = sub.add_parser("ir", help="print the IR of a module or function at a pipeline stage")
    ir.add_argument("target", help="FILE.py or FILE.py:NAME (an nn.Module class or a function)")
    ir.add_argument(
        "--input-shape",
        type=_parse_shape,
        action="append",
        help="shape of one input, e.g. 1,1,28,28 (repeat for more inputs)",
    )
    ir.add_argument("--stage", choices=STAGES, default="traced")
    ir.add_argument("--grad", action="store_true", help="differentiate the (scalar) output w.r.t. every float input")
    ir.add_argument("--reduce", choices=("sum", "mean"), help="with --grad: reduce a non-scalar output first")
    ir.add_argument("--dot", metavar="OUT.dot", help="also write the graph as Graphviz DOT")
    ir.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ir.set_defaults(func=cmd_ir, parser=ir)

    export = sub.add_parser("export", help="write a module or function as an ONNX model")
    export.add_argument("target", help="FILE.py or FILE.py:NAME (an nn.Module class or a function)")
    export.add_argument(
        "--input-shape",
        type=_parse_shape,
        action="append",
        help="shape of one input, e.g. 1,3,32,32 (repeat for more inputs)",
    )
    export.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the file to write")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    export.add_argument("--dynamic-batch", action="store_true", help="make dim 0 of every input and the output dynamic")
    export.add_argument(
        "--input-dtype", choices=("float32", "int64", "int32"), default="float32", help="dtype of the inputs"
    )
    export.set_defaults(func=cmd_export, parser=export)

    demo = sub.add_parser("demo", help="train the reference MNIST CNN and report accuracy")
    demo.add_argument("--root", default=None, help="MNIST folder (default ~/.cache/graphc/data)")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs (default 3)")
    demo.add_argument("--batch-size", type=int, default=64)
    demo.add_argument("--backend", choices=("llvm", "interp", "eager"), default="llvm")
    demo.add_argument("--limit", type=int, default=None, help="train on at most this many images")
    demo.add_argument("--out", default=None, help="checkpoint path (default ~/.cache/graphc/mnist_cnn.safetensors)")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="benchmark compiled models against PyTorch (and JAX, if installed)")
    bench.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    bench.add_argument("--plot", metavar="OUT.png", help="draw a chart of the ratios (needs matplotlib)")
    bench.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    bench.add_argument("--only", help="run only benchmarks whose name contains this")
    bench.set_defaults(func=cmd_bench)

    prof = sub.add_parser("profile", help="profile a script or a built-in workload (cnn, mlp); see docs/profiler.md")
    from graphc import _profile_cli

    _profile_cli.add_arguments(prof)
    prof.set_defaults(func=_profile_cli.run)

    run = sub.add_parser("run", help="run a script on N processes with MPI (like torchrun); see docs/distributed.md")
    from graphc.distributed import launch

    launch.add_arguments(run)
    run.set_defaults(func=launch.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (`graphc ir ... | head`): not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stays open until exit)
        return 0


if __name__ == "__main__":
    sys.exit(main())
