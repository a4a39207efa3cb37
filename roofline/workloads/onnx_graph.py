"""Read an ONNX graph (with the `onnx` package and its shape inference) into a LayerTable:
one row per compute node, costs from the inferred tensor shapes.

The batch (the first dimension of every graph input) is set to --batch; any other symbolic
input dimension takes --seq. Initializers are weights (read once per node that uses them).
Shape-only operators (Reshape, Transpose, Flatten, Cast, ...) are treated as free views.
An operator outside the supported list is an error that names it and its node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import FieldError, RooflineError, SpecError
from ..layers import LayerTable, LayerTableBuilder
from ..scenario import RunConfig
from . import costs
from .base import Unsplit

UNARY = {
    "Relu": 1,
    "LeakyRelu": 1,
    "Sigmoid": 3,
    "HardSigmoid": 2,
    "HardSwish": 3,
    "Tanh": 1,
    "Erf": 1,
    "Gelu": costs.GELU,
    "Exp": 1,
    "Log": 1,
    "Sqrt": 1,
    "Reciprocal": 1,
    "Neg": 1,
    "Abs": 1,
    "Clip": 1,
    "Softplus": 2,
    "Elu": 2,
    "Selu": 3,
}
# transcendental evaluations an element (exp, tanh, erf, log, the sigmoid's exp)
TRANSCENDENTAL_OPS = {
    "Sigmoid": 1,
    "Tanh": 1,
    "Erf": 1,
    "Gelu": costs.TRANSCENDENTALS["gelu"],
    "Exp": 1,
    "Log": 1,
    "Softplus": 2,
    "Elu": 1,
    "Selu": 1,
    "Softmax": costs.SOFTMAX_TRANSCENDENTALS,
    "LogSoftmax": 2,  # exp and log
}
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Where", "Equal", "Less", "Greater"}
NORMS = {
    "LayerNormalization": costs.LAYERNORM,
    "BatchNormalization": costs.BATCHNORM,
    "InstanceNormalization": costs.LAYERNORM,
    "GroupNormalization": costs.LAYERNORM,
    "SimplifiedLayerNormalization": costs.RMSNORM,
    "RMSNormalization": costs.RMSNORM,
}
REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceSumSquare"}
FREE = {
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Dropout",
    "Shape",
    "Constant",
    "Cast",
    "Transpose",
    "Slice",
    "Split",
    "Expand",
    "ConstantOfShape",
    "Range",
    "Size",
    "Tile",
    "Pad",
}
POOLS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
SUPPORTED = sorted(
    {"Conv", "Gemm", "MatMul", "Softmax", "LogSoftmax", "Concat", "Gather"}
    | set(UNARY)
    | BINARY
    | set(NORMS)
    | REDUCE
    | FREE
    | POOLS
)


@dataclass(frozen=True)
class OnnxArch(Unsplit):
    """An imported graph: not a family of its own kind of YAML file, but it answers the
    family protocol (no repeated blocks, no tensor split: the graph is taken as it is)."""

    family: ClassVar[str] = "onnx"
    model: Any = field(compare=False)  # onnx.ModelProto
    source: str
    symbolic: tuple[str, ...]  # names of symbolic non-batch input dimensions

    @property
    def takes_seq(self) -> bool:
        """Whether the graph has symbolic non-batch input dimensions (seq fixes them)."""
        return bool(self.symbolic)

    @property
    def default_seq(self) -> None:
        """None: the file gives no size for its symbolic dimensions; seq must be given."""
        return None

    @property
    def max_seq(self) -> None:
        """None: the graph states no limit."""
        return None

    def build(self, run: RunConfig, model: str) -> LayerTable:
        return build(self, run, model)

    def describe(self) -> dict[str, Any]:
        g = self.model.graph
        return {"source": self.source, "nodes": len(g.node), "symbolic_dims": list(self.symbolic)}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise RooflineError(
            "reading .onnx files needs the onnx package: pip install 'roofline[onnx]'"
        ) from None
    return onnx


def load_onnx(path: Path, shown: str) -> Any:
    """A Workload from an ONNX file; its shapes are resolved per scenario in `build`."""
    onnx = _onnx()
    from . import Published, Workload

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise SpecError(shown, [f"cannot read ONNX model: {exc}"]) from None
    inits = {i.name for i in model.graph.initializer}
    symbolic = []
    problems = []
    for init in model.graph.initializer:
        if any(d < 0 for d in init.dims):
            problems.append(f"initializer {init.name!r}: negative dimension in {list(init.dims)}")
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = list(inp.type.tensor_type.shape.dim)
        for d in dims:
            if d.HasField("dim_value") and d.dim_value < 1 and d is not dims[0]:
                problems.append(f"input {inp.name!r}: dimension {d.dim_value} (sizes must be >= 1)")
        symbolic += [d.dim_param for d in dims[1:] if d.dim_param]
    if not model.graph.node:
        problems.append("the graph has no nodes")
    if problems:
        raise SpecError(shown, problems)
    unsupported = sorted({n.op_type for n in model.graph.node} - set(SUPPORTED))
    if unsupported:
        node = next(n for n in model.graph.node if n.op_type in unsupported)
        raise SpecError(
            shown,
            [
                f"operator {unsupported[0]} (node {node.name or '?'}) is not supported"
                + (f"; nor {', '.join(unsupported[1:])}" if len(unsupported) > 1 else "")
                + f"; supported: {', '.join(SUPPORTED)}"
            ],
        )
    arch = OnnxArch(model=model, source=shown, symbolic=tuple(dict.fromkeys(symbolic)))
    return Workload(
        key=path.stem.lower(),
        name=model.graph.name or path.stem,
        arch=arch,
        published=Published(),
        sources=(f"ONNX graph {shown}",),
        path=shown,
    )


def _shapes(
    arch: OnnxArch, run: RunConfig, model_name: str
) -> tuple[Any, dict[str, tuple[int, ...]]]:
    onnx = _onnx()
    model = onnx.ModelProto()
    model.CopyFrom(arch.model)
    inits = {i.name for i in model.graph.initializer}
    if arch.symbolic and run.seq is None:
        raise FieldError(
            "seq",
            None,
            f"{model_name} has symbolic input dimension(s) "
            f"{', '.join(arch.symbolic)}; give seq to fix them",
        )
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if i == 0:
                d.Clear()
                d.dim_value = run.batch
            elif d.dim_param:
                d.Clear()
                d.dim_value = run.seq
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise SpecError(arch.source, [f"shape inference failed: {exc}"]) from None
    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return inferred, shapes


def _attr(node: Any, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return a.ints if a.ints else (a.i if a.type == 2 else a.f)
    return default


def build(arch: OnnxArch, run: RunConfig, model: str) -> LayerTable:
    if run.phase in ("prefill", "decode"):
        raise FieldError("phase", run.phase, "an ONNX graph runs as one forward pass")
    if run.seq is not None and not arch.symbolic:
        raise FieldError("seq", run.seq, f"{model}'s input shapes are fixed in the file")
    inferred, shapes = _shapes(arch, run, model)
    inits = {i.name for i in inferred.graph.initializer}
    counted: set[str] = set()
    out = LayerTableBuilder()
    for i, node in enumerate(inferred.graph.node):
        op = node.op_type
        if op in FREE:
            continue
        name = node.name or f"{op}_{i}"
        ins = [x for x in node.input if x]
        missing = [x for x in [*ins, *node.output] if x not in shapes]
        if missing:
            raise SpecError(
                arch.source,
                [f"node {name} ({op}): shape of {missing[0]!r} unknown after inference"],
            )
        size = {x: math.prod(shapes[x]) for x in [*ins, *node.output]}
        weights = sum(size[x] for x in ins if x in inits)
        inputs = sum(size[x] for x in ins if x not in inits)
        outputs = sum(size[x] for x in node.output)
        params = sum(size[x] for x in dict.fromkeys(ins) if x in inits and x not in counted)
        counted |= {x for x in ins if x in inits}
        y = size[node.output[0]]
        kind, flops = _cost(node, op, ins, shapes, y, inits)
        gemm = _gemm(node, op, ins, shapes, shapes[node.output[0]]) if kind in GEMMS else None
        if op == "Gather" and ins[0] in inits:  # embedding lookup: only the rows read
            weights = y
        # kept for backward (no sharing analysis across nodes): ReLU and softmax keep their
        # output, other weighted or non-linear nodes their activation inputs
        if op in ("Relu", "Softmax", "LogSoftmax"):
            saved = outputs
        elif kind in ("matmul", "conv", "attention", "norm", "activation"):
            saved = inputs
        else:
            saved = 0
        out.add(
            name,
            kind,
            flops=flops,
            weights=weights,
            inputs=inputs,
            outputs=outputs,
            params=params,
            saved=saved,
            gemm=gemm,
            transcendentals=TRANSCENDENTAL_OPS.get(op, 0) * y,
        )
    if not len(out):
        raise SpecError(arch.source, ["the graph has no compute nodes"])
    return out.build(*run.element_bytes)


GEMMS = ("matmul", "conv", "attention")


def _gemm(
    node: Any, op: str, ins: list[str], shapes: dict[str, tuple[int, ...]], y: tuple[int, ...]
) -> tuple[float, float, float, float]:
    """(groups, m, n, k) of a Conv (implicit GEMM per group), Gemm or (batched) MatMul."""
    if op == "Conv":
        w = shapes[ins[1]]  # [M, C/group, kh, kw]
        g = int(_attr(node, "group", 1))
        return (g, y[0] * math.prod(y[2:]), w[0] // g, math.prod(w[1:]))
    if op == "Gemm":
        a = shapes[ins[0]]
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return (1, y[0], y[1], k)
    k = shapes[ins[0]][-1]  # MatMul: [..., m, k] x [..., k, n]
    if len(y) == 1:
        return (1, 1, y[0], k)
    return (math.prod(y[:-2]), y[-2], y[-1], k)


def _cost(
    node: Any, op: str, ins: list[str], shapes: dict[str, tuple[int, ...]], y: int, inits: set[str]
) -> tuple[str, float]:
    if op == "Conv":
        w = shapes[ins[1]]  # [M, C/group, kh, kw]
        per_output = math.prod(w[1:])
        return "conv", 2 * y * per_output + (y if len(ins) > 2 else 0)
    if op == "Gemm":
        a = shapes[ins[0]]
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return "matmul", 2 * y * k + (y if len(ins) > 2 else 0)
    if op == "MatMul":
        k = shapes[ins[0]][-1]
        weighted = ins[1] in inits or ins[0] in inits
        return ("matmul" if weighted else "attention"), 2 * y * k
    if op in UNARY:
        return "activation", UNARY[op] * y
    if op in BINARY:
        return "elementwise", y
    if op in ("Softmax", "LogSoftmax"):
        return "softmax", costs.SOFTMAX * y
    if op in NORMS:
        return "norm", NORMS[op] * y
    if op in REDUCE:
        return "elementwise", math.prod(shapes[ins[0]])
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        return "pool", math.prod(shapes[ins[0]])
    if op in POOLS:
        return "pool", math.prod(_attr(node, "kernel_shape", [1])) * y
    if op == "Concat":
        return "concat", 0
    if op == "Gather":
        return "embedding", 0
    raise AssertionError(f"unhandled supported op {op}")  # pragma: no cover
