"""The CNN family: a small graph language for convolutional networks, written in YAML.

An architecture is `input: [channels, height, width]`, optional `defaults` for convolutions
(`bn`, `act`, `bias`) and `layers`, a list of operations, each a one-key mapping plus options:

  {conv: C, k: 3, s: 1, p: same|valid|N|[ph, pw], groups: N|depthwise, bn, act, bias}
  {sepconv: C, k: 3, s: 1}       depthwise k x k then pointwise 1 x 1 (Xception)
  {maxpool: 3, s: 2, p: 0} / {avgpool: 3, s: 1, p: 1} / {avgpool: global}
  {norm: batch} / {act: relu}    standalone batch norm or activation (pre-activation nets)
  {norm: lrn, size: 5}           local response normalisation (AlexNet)
  {fc: N, act: relu}             fully connected (flattens its input)
  {dropout: 0.5}                 no cost at inference; accepted for fidelity
  {residual: [ops], shortcut: [ops], act: relu}   add the branch to the shortcut (default
                                 identity), then an optional activation
  {concat: [[ops], [ops], ...]}  parallel branches joined along channels; [] is identity
  {ops: [ops], repeat: N, name: stage}            a named group, optionally repeated

Padding defaults to "same" (k // 2) for convolutions and to 0 for pooling; pooling stride
defaults to its kernel. A repeated group whose second pass costs what its first does and
keeps its shape is stored once with count N; one that changes the shape is unrolled.

This module is long (over 400 lines) on purpose: the graph language is one interpreter
(parse, walk, emit rows), and each operation's shape rule sits next to its cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .._schema import Fields
from ..errors import FieldError, shown
from ..layers import LayerTable, LayerTableBuilder
from ..scenario import RunConfig
from . import costs
from .base import Unsplit

Shape = tuple[int, int, int]  # channels, height, width (one sample)


class Value(tuple[int, int, int]):
    """A tensor flowing through the graph: its shape (one sample) and an id, so that the
    activation memory counts each tensor kept for the backward pass once."""

    tid: int

    def __new__(cls, shape: Shape, tid: int) -> Value:
        value = super().__new__(cls, shape)
        value.tid = tid
        return value


@dataclass
class Row:
    """One layer of one sample, in elements. Mutable while the graph is walked: the first
    pass of a repeated group is renamed, and `saved` grows as later layers need its output."""

    name: str
    kind: str
    flops: float
    weights: float
    inputs: float
    outputs: float
    params: float
    saved: float = 0.0  # elements kept for the backward pass
    saved_fixed: float = 0.0  # bytes kept whatever the datatype (max-pooling indices)
    gemm: tuple[float, float, float, float] | None = None  # groups, m per sample, n, k
    transcendentals: float = 0.0  # exp/tanh evaluations
    # an op's activation right after its convolution or fully connected layer (no batch
    # norm between) may run in that GEMM's epilogue; in training it then also writes the
    # pre-activation when the activation's backward needs it (not for ReLU): elements
    fuse_aux: float | None = None


OP_KEYS = (
    "conv",
    "sepconv",
    "maxpool",
    "avgpool",
    "norm",
    "act",
    "fc",
    "dropout",
    "residual",
    "concat",
    "ops",
)
OPTIONS = {
    "conv": {"k", "s", "p", "groups", "bn", "act", "bias", "name"},
    "sepconv": {"k", "s", "p", "bn", "act", "name"},
    "maxpool": {"s", "p", "ceil", "name"},
    "avgpool": {"s", "p", "ceil", "name"},
    "norm": {"size", "name"},
    "act": {"name"},
    "fc": {"act", "bias", "name"},
    "dropout": set(),
    "residual": {"shortcut", "act", "name"},
    "concat": {"name"},
    "ops": {"repeat", "name"},
}


# The schema of the op list, from the same tables the graph walker checks against: each item
# is one op (its key from OP_KEYS) with that op's options. Values are checked by the walker.
_LAYERS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "anyOf": [
            {
                "type": "object",
                "required": [op],
                "properties": {op: {}, **{o: {} for o in sorted(OPTIONS[op])}},
                "additionalProperties": False,
            }
            for op in OP_KEYS
        ]
    },
    "description": "the operation graph: one op per item (conv, maxpool, residual, ...)",
}
_INPUT_SCHEMA = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1},
    "minItems": 3,
    "maxItems": 3,
    "description": "[channels, height, width]",
}
_DEFAULTS_SCHEMA = {
    "type": "object",
    "properties": {"bn": {}, "act": {}, "bias": {}},
    "additionalProperties": False,
}


@dataclass(frozen=True)
class CnnArch(Unsplit):
    family: ClassVar[str] = "cnn"
    input: Shape
    layers: tuple[Any, ...]  # validated op mappings (plain data, frozen as tuples/dicts)
    defaults: tuple[tuple[str, Any], ...]

    # The family protocol (base.Architecture), answered explicitly: a CNN sees one image
    # size, is one graph (no identical blocks a pipeline could split, no tensor split
    # modelled), keeps nothing between steps, uses all its weights and has no attention.

    @property
    def takes_seq(self) -> bool:
        """No: the input is an image of the size `input` gives."""
        return False

    @property
    def default_seq(self) -> None:
        return None

    @property
    def max_seq(self) -> None:
        return None

    def build(self, run: RunConfig, model: str) -> LayerTable:
        return build(self, run, model)


INDEX_BYTES = 8  # max pooling keeps the position of each maximum as an int64 (PyTorch)


class _Invalid(Exception):
    """An op that does not fit the graph language or the shapes; carries the field path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def parse_architecture(f: Fields) -> CnnArch | None:
    raw_input = f.raw("input", _INPUT_SCHEMA, required=True)
    layers = f.raw("layers", _LAYERS_SCHEMA, required=True)
    defaults = f.raw("defaults", _DEFAULTS_SCHEMA) or {}
    f.done()
    if not (
        isinstance(raw_input, list)
        and len(raw_input) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in raw_input)
    ):
        f.fail(
            "input",
            f"expected [channels, height, width] of whole numbers > 0, got {shown(raw_input)}",
        )
        return None
    if not isinstance(layers, list) or not layers:
        f.fail("layers", "expected a non-empty list of operations")
        return None
    if not isinstance(defaults, dict) or set(defaults) - {"bn", "act", "bias"}:
        f.fail("defaults", f"allowed keys: bn, act, bias; got {shown(defaults)}")
        return None
    arch = CnnArch(tuple(raw_input), tuple(layers), tuple(sorted(defaults.items())))
    try:  # walk the graph once with batch 1 so that every shape and option is checked now
        _Graph(arch, 1, f.path).run()
    except _Invalid as exc:
        f.problems.append(str(exc))
        return None
    return arch


def _pair(value: Any, where: str, name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return value[0], value[1]
    raise _Invalid(where, f"{name}: expected a whole number or [h, w], got {shown(value)}")


class _Graph:
    """Walks the op list, tracking shapes and tensors, and emits rows (costs per sample).

    Activation memory: a tensor is kept for the backward pass when a consumer's backward
    needs it (PyTorch semantics): convolutions, fully connected layers, batch norm, max
    pooling and non-ReLU activations need their input; ReLU runs in place and needs its
    output; additions, concatenation and average pooling need nothing; max pooling also keeps
    the index of every maximum (int64). Each kept tensor is
    counted once, on the row that produced it.
    """

    def __init__(self, arch: CnnArch, batch: int, where: str) -> None:
        self.arch = arch
        self.b = batch
        self.where = where or "architecture"
        self.defaults = dict(arch.defaults)
        self.producer: dict[int, Row | None] = {}
        self.size: dict[int, int] = {}
        self.needed: set[int] = set()

    def run(self) -> list[tuple[Row, int]]:
        rows: list[tuple[Row, int]] = []
        start = self._tensor(self.arch.input, None)
        self.seq(list(self.arch.layers), start, "", f"{self.where}.layers", rows)
        for tid in self.needed:
            row = self.producer[tid]
            target = row if row is not None else rows[0][0]  # the input image: first layer
            target.saved += self.size[tid]
        return rows

    def _tensor(self, shape: Shape, row: Row | None) -> Value:
        tid = len(self.size)
        self.size[tid] = math.prod(shape)
        self.producer[tid] = row
        return Value(shape, tid)

    def need(self, value: Value) -> None:
        self.needed.add(value.tid)

    # ------------------------------------------------------------------ sequences and groups
    def seq(
        self, ops: Any, x: Value, prefix: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        if not isinstance(ops, list):
            raise _Invalid(where, f"expected a list of operations, got {shown(ops)}")
        counters: dict[str, int] = {}
        for i, op in enumerate(ops):
            here = f"{where}[{i}]"
            if not isinstance(op, dict):
                raise _Invalid(
                    here, f"expected a mapping such as {{conv: 64, k: 3}}, got {shown(op)}"
                )
            # `act` names an operation only alone; elsewhere it is an option (conv, fc, ...)
            keys = [k for k in OP_KEYS if k in op and k != "act"] or [
                k for k in ("act",) if k in op
            ]
            if len(keys) != 1:
                raise _Invalid(
                    here, f"name exactly one operation of {', '.join(OP_KEYS)}; got {sorted(op)}"
                )
            kind = keys[0]
            unknown = set(op) - {kind} - OPTIONS[kind]
            if unknown:
                raise _Invalid(
                    here,
                    f"{kind}: unknown option(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"allowed: {', '.join(sorted(OPTIONS[kind])) or 'none'}",
                )
            counters[kind] = counters.get(kind, 0) + 1
            name = op.get("name") or f"{kind}{counters[kind]}"
            x = getattr(self, f"op_{kind}")(op, x, f"{prefix}{name}", here, rows)
        return x

    def op_ops(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        repeat = op.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise _Invalid(where, f"repeat: expected a whole number >= 1, got {shown(repeat)}")
        if repeat == 1:
            return self.seq(op["ops"], x, f"{name}.", f"{where}.ops", rows)
        once: list[tuple[Row, int]] = []
        y = self.seq(op["ops"], x, f"{name}[1-{repeat}].", f"{where}.ops", once)
        if y == x:  # the group keeps its shape, so every pass costs the same: one set of rows
            rows.extend((row, count * repeat) for row, count in once)
            return y
        rows.extend(once)  # the shape changes (DenseNet): each pass its own rows
        for i in range(2, repeat + 1):
            y = self.seq(op["ops"], y, f"{name}[{i}].", f"{where}.ops", rows)
        for row, _ in once:  # the first pass keeps its own name
            row.name = row.name.replace(f"{name}[1-{repeat}].", f"{name}[1].")
        return y

    # ------------------------------------------------------------------ operations
    def _emit(
        self,
        rows: list[tuple[Row, int]],
        name: str,
        kind: str,
        flops: float,
        w: float,
        inp: float,
        out_shape: Shape,
        params: float,
        gemm: tuple[float, float, float, float] | None = None,
        transcendentals: float = 0.0,
    ) -> Value:
        row = Row(name, kind, flops, w, inp, math.prod(out_shape), params, gemm=gemm)
        row.transcendentals = transcendentals
        rows.append((row, 1))
        return self._tensor(out_shape, row)

    def _conv(
        self,
        rows: list[tuple[Row, int]],
        name: str,
        where: str,
        x: Value,
        out_c: Any,
        k: Any,
        s: Any,
        p: Any,
        groups: Any,
        bias: bool,
    ) -> Value:
        c, h, w = x
        if isinstance(out_c, bool) or not isinstance(out_c, int) or out_c < 1:
            raise _Invalid(where, f"channels: expected a whole number >= 1, got {shown(out_c)}")
        kh, kw = _pair(k, where, "k")
        sh, sw = _pair(s, where, "s")
        if min(kh, kw, sh, sw) < 1:
            raise _Invalid(where, "k and s must be >= 1")
        if p in (None, "same"):
            ph, pw = kh // 2, kw // 2
        elif p == "valid":
            ph, pw = 0, 0
        else:
            ph, pw = _pair(p, where, "p")
        g = c if groups == "depthwise" else groups
        if isinstance(g, bool) or not isinstance(g, int) or g < 1 or c % g or out_c % g:
            raise _Invalid(
                where,
                f"groups: must divide input ({c}) and output ({out_c}) channels, "
                f"got {shown(groups)}",
            )
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise _Invalid(where, f"kernel {kh}x{kw} does not fit a {h}x{w} input")
        weights = out_c * (c // g) * kh * kw + (out_c if bias else 0)
        out_elems = out_c * ho * wo
        flops = 2 * out_elems * (c // g) * kh * kw + (out_elems if bias else 0)
        self.need(x)  # dW needs the input
        # an implicit GEMM per group: (Ho Wo per sample) x (out_c / g) x (c / g kh kw)
        gemm = (g, ho * wo, out_c // g, c // g * kh * kw)
        return self._emit(
            rows, name, "conv", flops, weights, c * h * w, (out_c, ho, wo), weights, gemm
        )

    def _bn(self, rows: list[tuple[Row, int]], name: str, x: Value) -> Value:
        n = math.prod(x)
        self.need(x)
        return self._emit(rows, name, "norm", costs.BATCHNORM * n, 2 * x[0], n, tuple(x), 2 * x[0])  # type: ignore[arg-type]

    def _act(self, rows: list[tuple[Row, int]], name: str, where: str, act: Any, x: Value) -> Value:
        if act in (None, "none", False):
            return x
        if not isinstance(act, str) or act not in costs.ACTIVATIONS:
            raise _Invalid(
                where, f"act: must be one of none, {', '.join(costs.ACTIVATIONS)}; got {shown(act)}"
            )
        n = math.prod(x)
        if act != "relu":
            self.need(x)  # the derivative of a smooth activation needs its input
        flops, trans = costs.ACTIVATIONS[act] * n, costs.TRANSCENDENTALS[act] * n
        producer = rows[-1][0] if rows else None
        y = self._emit(rows, name, "activation", flops, 0, n, tuple(x), 0, None, trans)  # type: ignore[arg-type]
        if act == "relu":
            self.need(y)  # in place: the output (its sign) is what backward needs
        op = name.rsplit(".", 1)[0]  # the op whose activation this is
        own_gemm = (op, f"{op}.pointwise")  # its conv or fc (a separable conv's second)
        # right after its own GEMM (no norm between): it may run in that GEMM's epilogue
        if (
            producer is not None
            and producer.kind in ("conv", "matmul")
            and producer.name in own_gemm
        ):
            rows[-1][0].fuse_aux = 0.0 if act == "relu" else float(n)
        return y

    def _flag(self, op: dict[str, Any], key: str, where: str) -> Any:
        value = op.get(
            key, self.defaults.get(key, {"bn": False, "act": "none", "bias": False}[key])
        )
        if key in ("bn", "bias") and not isinstance(value, bool):
            raise _Invalid(where, f"{key}: expected true or false, got {shown(value)}")
        return value

    def op_conv(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        y = self._conv(
            rows,
            name,
            where,
            x,
            op["conv"],
            op.get("k", 1),
            op.get("s", 1),
            op.get("p"),
            op.get("groups", 1),
            self._flag(op, "bias", where),
        )
        if self._flag(op, "bn", where):
            y = self._bn(rows, f"{name}.bn", y)
        return self._act(rows, f"{name}.act", where, self._flag(op, "act", where), y)

    def op_sepconv(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        k, s = op.get("k", 3), op.get("s", 1)
        y = self._conv(
            rows, f"{name}.depthwise", where, x, x[0], k, s, op.get("p"), "depthwise", False
        )
        y = self._conv(rows, f"{name}.pointwise", where, y, op["sepconv"], 1, 1, 0, 1, False)
        if self._flag(op, "bn", where):
            y = self._bn(rows, f"{name}.bn", y)
        return self._act(rows, f"{name}.act", where, self._flag(op, "act", where), y)

    def _pool(
        self,
        op: dict[str, Any],
        x: Value,
        name: str,
        where: str,
        rows: list[tuple[Row, int]],
        kind: str,
    ) -> Value:
        c, h, w = x
        if kind == "maxpool":
            self.need(x)  # the positions of the maxima come from the input
        if op[kind] == "global":
            return self._emit(rows, name, "pool", c * h * w, 0, c * h * w, (c, 1, 1), 0)
        kh, kw = _pair(op[kind], where, kind)
        sh, sw = _pair(op.get("s", op[kind]), where, "s")
        ph, pw = _pair(op.get("p", 0), where, "p")
        if min(kh, kw, sh, sw) < 1:
            raise _Invalid(where, "kernel and stride must be >= 1")
        rnd = math.ceil if op.get("ceil", False) else math.floor
        ho, wo = rnd((h + 2 * ph - kh) / sh) + 1, rnd((w + 2 * pw - kw) / sw) + 1
        if ho < 1 or wo < 1:
            raise _Invalid(where, f"pool {kh}x{kw} does not fit a {h}x{w} input")
        y = self._emit(rows, name, "pool", kh * kw * c * ho * wo, 0, c * h * w, (c, ho, wo), 0)
        if kind == "maxpool":  # and the argmax of every window, as int64 indices
            rows[-1][0].saved_fixed = INDEX_BYTES * math.prod(y)
        return y

    def op_maxpool(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        return self._pool(op, x, name, where, rows, "maxpool")

    def op_avgpool(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        return self._pool(op, x, name, where, rows, "avgpool")

    def op_norm(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        if op["norm"] == "batch":
            return self._bn(rows, name, x)
        if op["norm"] == "lrn":  # local response normalisation across `size` channels
            size = op.get("size", 5)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise _Invalid(where, f"size: expected a whole number >= 1, got {shown(size)}")
            n = math.prod(x)
            self.need(x)
            y = self._emit(rows, name, "norm", (costs.LRN_BASE + size) * n, 0, n, tuple(x), 0)  # type: ignore[arg-type]
            self.need(y)
            return y
        raise _Invalid(where, f"norm: 'batch' or 'lrn', got {shown(op['norm'])}")

    def op_act(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        return self._act(rows, name, where, op["act"], x)

    def op_dropout(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        return x

    def op_fc(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        n_out = op["fc"]
        if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1:
            raise _Invalid(where, f"fc: expected a whole number >= 1, got {shown(n_out)}")
        bias = op.get("bias", True)
        n_in = math.prod(x)
        weights = n_in * n_out + (n_out if bias else 0)
        self.need(x)
        y = self._emit(
            rows,
            name,
            "matmul",
            2 * n_in * n_out + (n_out if bias else 0),
            weights,
            n_in,
            (n_out, 1, 1),
            weights,
            (1, 1, n_out, n_in),
        )
        return self._act(rows, f"{name}.act", where, op.get("act", "none"), y)

    def op_residual(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        main = self.seq(op["residual"], x, f"{name}.", f"{where}.residual", rows)
        short = self.seq(op.get("shortcut", []), x, f"{name}.shortcut.", f"{where}.shortcut", rows)
        if tuple(main) != tuple(short):
            raise _Invalid(
                where,
                f"residual: branch gives {tuple(main)}, shortcut gives {tuple(short)} "
                "(channels, h, w)",
            )
        n = math.prod(main)
        y = self._emit(rows, f"{name}.add", "elementwise", costs.ADD * n, 0, 2 * n, tuple(main), 0)  # type: ignore[arg-type]
        return self._act(rows, f"{name}.act", where, op.get("act", "none"), y)

    def op_concat(
        self, op: dict[str, Any], x: Value, name: str, where: str, rows: list[tuple[Row, int]]
    ) -> Value:
        branches = op["concat"]
        if not isinstance(branches, list) or len(branches) < 2:
            raise _Invalid(
                where, "concat: expected a list of two or more branches (lists of operations)"
            )
        outs = [
            self.seq(br, x, f"{name}.b{i + 1}.", f"{where}.concat[{i}]", rows)
            for i, br in enumerate(branches)
        ]
        if len({tuple(o)[1:] for o in outs}) != 1:
            raise _Invalid(
                where,
                f"concat: branch outputs differ in size: {[tuple(o) for o in outs]} "
                "(channels, h, w)",
            )
        shape = (sum(o[0] for o in outs), outs[0][1], outs[0][2])
        n = math.prod(shape)
        return self._emit(rows, f"{name}.concat", "concat", 0, 0, n, shape, 0)


def build(arch: CnnArch, run: RunConfig, model: str) -> LayerTable:
    if run.seq is not None:
        raise FieldError(
            "seq", run.seq, f"{model} is a CNN; it takes {arch.input[1]}x{arch.input[2]} images"
        )
    if run.phase in ("prefill", "decode"):
        raise FieldError("phase", run.phase, f"{model} is a CNN: use inference or training")
    b = run.batch
    out = LayerTableBuilder()
    for row, count in _Graph(arch, b, "").run():
        out.add(
            row.name,
            row.kind,
            flops=b * row.flops,
            weights=row.weights,
            inputs=b * row.inputs,
            outputs=b * row.outputs,
            params=row.params,
            count=count,
            saved=b * row.saved,
            masks=b * row.saved_fixed,
            gemm=None if row.gemm is None else (row.gemm[0], b * row.gemm[1], *row.gemm[2:]),
            transcendentals=b * row.transcendentals,
            fuse_aux=None if row.fuse_aux is None else b * row.fuse_aux,
        )
    return out.build(*run.element_bytes)
