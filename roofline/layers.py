"""LayerTable: the columnar per-layer cost table that builders emit and the engine reads.

One row is one layer *instance*; identical repeated blocks are one row with a `count`.
Costs are per instance, in FLOP and bytes; `totals` multiplies by `count`.

Traffic model (documented in README "How costs are counted"): every layer reads its weights
and its activation inputs from DRAM and writes its outputs back (no fusion across layers,
no reuse through on-chip cache between layers). This is the usual unfused roofline bound;
RunConfig.fused_epilogues folds the rows a builder marks into the GEMM before them
(`fuse_epilogues`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# Layer kinds. GEMM-like kinds have a backward pass of two GEMMs (input and weight gradients).
KINDS = (
    "embedding",  # table lookup (gather); reads only the rows it touches
    "matmul",  # activation x weight (linear / projection / LSTM gates)
    "conv",  # convolution (a GEMM over patches), grouped and depthwise included
    "attention",  # activation x activation batched matmul (QK^T, PV)
    "softmax",
    "norm",  # layer norm / RMS norm / batch norm
    "activation",  # GELU, SiLU, tanh, ReLU, gating multiply
    "elementwise",  # residual add and the like
    "pool",  # max / average pooling
    "concat",  # copies inputs into one output (Inception, DenseNet)
)
GEMM_KINDS = frozenset({"matmul", "conv", "attention"})
# the name a fused attention kernel's row ends in (FlashAttention: scores, softmax and
# context in one kernel); efficiency.py gives it the device's measured attention ceiling
FUSED_ATTENTION = ".flash"


# what the rows of a LoRA adapter's name hold (`block.attn.qkv_proj.lora_q.a`): its down
# projection (`.a`), its up projection (`.b`) and its scaled add into the base output
# (`.add`); in a LoRA fine-tune these are the only rows whose parameters train
LORA = ".lora_"


def lora_rows(names: Any) -> np.ndarray:
    """(L,) bool: which rows belong to LoRA adapters."""
    return np.char.find(np.asarray(names, dtype=str), LORA) >= 0


def fused_attention(names: Any) -> np.ndarray:
    """(L,) bool: which rows are fused attention kernels."""
    return np.char.endswith(np.asarray(names, dtype=str), FUSED_ATTENTION)


@dataclass(frozen=True)
class LayerTable:
    """Struct of arrays, one entry per distinct layer. All costs per single instance."""

    name: np.ndarray  # str
    kind: np.ndarray  # str, one of KINDS
    count: np.ndarray  # int64, repeats of this layer
    flops: np.ndarray  # float64, FLOP per instance
    weight_bytes: np.ndarray  # float64, parameter bytes read per instance
    input_bytes: np.ndarray  # float64, activation bytes read per instance
    output_bytes: np.ndarray  # float64, activation bytes written per instance
    params: np.ndarray  # float64, distinct parameters of the row, all repeats together
    saved_bytes: np.ndarray  # float64, activation bytes kept for the backward pass, per instance
    # GEMM shape of GEMM-like rows, per instance (0 elsewhere): `gemm_groups` independent
    # products of (gemm_m x gemm_k) . (gemm_k x gemm_n); used by the efficiency model
    gemm_groups: np.ndarray
    gemm_m: np.ndarray
    gemm_n: np.ndarray
    gemm_k: np.ndarray
    # transcendental evaluations (exp, tanh, erf) per instance: a cost apart from FLOPs
    transcendentals: np.ndarray
    # rows a builder marks as able to run in the epilogue of the GEMM-like row before them
    # (an activation after its projection or convolution): the bytes that epilogue writes
    # besides the row's output in training (what the row's backward needs of its input:
    # the pre-activation of GELU or SiLU, nothing for ReLU); NaN for rows that cannot.
    # None: no row can (`fuse_epilogues` reads it)
    fuse_aux: np.ndarray | None = None
    # bytes of `input_bytes` read from the KV cache per instance (a decode step's attention);
    # None: none (what `traffic_split` reads)
    cache_bytes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.name)

    @property
    def bytes(self) -> np.ndarray:
        """Bytes moved per instance: weights + inputs read, outputs written."""
        return np.asarray(self.weight_bytes + self.input_bytes + self.output_bytes)

    @property
    def total_flops(self) -> np.ndarray:
        return np.asarray(self.flops * self.count)

    @property
    def total_bytes(self) -> np.ndarray:
        return np.asarray(self.bytes * self.count)

    def traffic_split(self) -> tuple[float, float, float]:
        """Bytes moved by all rows, all repeats, as (weights, KV cache, activations): the
        parameter reads (and in training the optimizer's state), the KV-cache reads, and
        everything else read or written."""
        weights = float(np.sum(self.weight_bytes * self.count))
        cache = 0.0 if self.cache_bytes is None else float(np.sum(self.cache_bytes * self.count))
        return weights, cache, float(np.sum(self.total_bytes)) - weights - cache

    @property
    def total_saved_bytes(self) -> float:
        """Activation bytes kept for the backward pass by all layers, all repeats."""
        return float(np.sum(self.saved_bytes * self.count))

    @property
    def total_params(self) -> float:
        return float(np.sum(self.params))


class LayerTableBuilder:
    """Collects rows in element counts, then converts to bytes for one datatype."""

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []

    def add(
        self,
        name: str,
        kind: str,
        *,
        flops: float,
        weights: float = 0.0,
        inputs: float,
        outputs: float,
        params: float = 0.0,
        count: int = 1,
        shared: bool = False,
        saved: float = 0.0,
        masks: float = 0.0,
        gemm: tuple[float, float, float, float] | None = None,
        transcendentals: float = 0.0,
        cached: float = 0.0,
        fuse_aux: float | None = None,
    ) -> None:
        """One layer instance: FLOPs, and the elements of weights read, inputs read and
        outputs written; `params` per instance (`shared`: all repeats use the same ones);
        `saved`: activation elements this layer keeps for the backward pass (each tensor
        attributed to one layer only), `masks`: one-byte elements kept (dropout masks);
        `gemm`: (groups, m, n, k) of a GEMM-like layer (required for those kinds);
        `transcendentals`: exp/tanh/erf evaluations (counted in `flops` as 1 each too);
        `cached`: the elements of `inputs` read from the KV cache (stored in its format);
        `fuse_aux`: set where the row may run in the epilogue of the GEMM-like row just
        before it (with RunConfig.fused_epilogues): the elements that epilogue writes in
        training besides the row's output (LayerTable.fuse_aux)."""
        if kind not in KINDS:  # a programming error in a builder, not user input
            raise ValueError(f"unknown layer kind {kind!r}")
        if (kind in GEMM_KINDS) != (gemm is not None):
            raise ValueError(f"{name}: a GEMM shape is given exactly for GEMM kinds")
        unique = params if shared else params * count
        shape = gemm or (0.0, 0.0, 0.0, 0.0)
        row: tuple[Any, ...] = (name, kind, count, flops, weights, inputs, outputs, unique)
        row += (saved, masks, *shape, transcendentals, cached)
        row += (np.nan if fuse_aux is None else fuse_aux,)
        self._rows.append(row)

    def linear(
        self,
        name: str,
        tokens: float,
        d_in: int,
        d_out: int,
        *,
        bias: bool,
        count: int = 1,
        shared: bool = False,
        masks: float = 0.0,
        saved: float | None = None,
        inputs: float | None = None,
    ) -> None:
        """y = x W (+ b) for `tokens` rows: tokens x d_in x d_out multiply-adds (+ one add an
        output for the bias); reads x and keeps it for the weight gradient dW = x^T dy
        (`inputs`, `saved`: other element counts read and kept instead)."""
        params = d_in * d_out + (d_out if bias else 0)
        self.add(
            name,
            "matmul",
            flops=2 * tokens * d_in * d_out + (tokens * d_out if bias else 0),
            weights=params,
            inputs=tokens * d_in if inputs is None else inputs,
            outputs=tokens * d_out,
            params=params,
            count=count,
            shared=shared,
            saved=tokens * d_in if saved is None else saved,
            masks=masks,
            gemm=(1, tokens, d_out, d_in),
        )

    def __len__(self) -> int:
        return len(self._rows)

    def build(
        self,
        bytes_per_element: float,
        weight_bytes: float | None = None,
        cache_bytes: float | None = None,
    ) -> LayerTable:
        """Element counts to bytes: activations at `bytes_per_element`, weights at
        `weight_bytes` and KV-cache reads at `cache_bytes` (default: the same)."""
        cols = list(zip(*self._rows)) if self._rows else [()] * 17
        b = float(bytes_per_element)
        wb = b if weight_bytes is None else float(weight_bytes)
        cb = b if cache_bytes is None else float(cache_bytes)
        cached = np.array(cols[15], dtype=np.float64)
        return LayerTable(
            name=np.array(cols[0], dtype=str),
            kind=np.array(cols[1], dtype=str),
            count=np.array(cols[2], dtype=np.int64),
            flops=np.array(cols[3], dtype=np.float64),
            weight_bytes=np.array(cols[4], dtype=np.float64) * wb,
            input_bytes=(np.array(cols[5], dtype=np.float64) - cached) * b + cached * cb,
            output_bytes=np.array(cols[6], dtype=np.float64) * b,
            params=np.array(cols[7], dtype=np.float64),
            saved_bytes=np.array(cols[8], dtype=np.float64) * b
            + np.array(cols[9], dtype=np.float64),
            gemm_groups=np.array(cols[10], dtype=np.float64),
            gemm_m=np.array(cols[11], dtype=np.float64),
            gemm_n=np.array(cols[12], dtype=np.float64),
            gemm_k=np.array(cols[13], dtype=np.float64),
            transcendentals=np.array(cols[14], dtype=np.float64),
            fuse_aux=np.array(cols[16], dtype=np.float64) * b,
            cache_bytes=cached * cb,
        )


def fuse_epilogues(table: LayerTable, training: bool) -> LayerTable:
    """A forward table with each row its builder marked (`fuse_aux`) folded into the
    epilogue of the GEMM-like row just before it (of the same count): the GEMM row
    (renamed `gemm+op`) takes the op's FLOPs, transcendentals, parameters and saved
    activations, reads the op's other inputs (what the op reads beyond the GEMM's output)
    and writes the op's output instead of its own; in training it also writes `fuse_aux`
    (the pre-activation the op's backward needs: cuBLASLt's GELU_AUX epilogue). The op's
    row, its DRAM round trip and its kernel launch are gone. Residual adds are not marked:
    after a row-parallel projection they follow its all-reduce, and stacks fuse them with
    the next norm instead."""
    aux_col = table.fuse_aux
    if not len(table) or aux_col is None or not np.any(np.isfinite(aux_col)):
        return table
    keep = np.ones(len(table), dtype=bool)
    names = [str(n) for n in table.name]
    cols = {
        c: getattr(table, c).astype(np.float64).copy()
        for c in (
            "flops",
            "weight_bytes",
            "input_bytes",
            "output_bytes",
            "params",
            "saved_bytes",
            "transcendentals",
        )
    }
    head = -1  # the GEMM row the current chain fuses into
    out = aux = 0.0  # the chain's output so far, and the aux bytes it writes
    for j in range(len(table)):
        if np.isfinite(aux_col[j]) and head >= 0 and table.count[j] == table.count[head]:
            cols["input_bytes"][head] += max(float(table.input_bytes[j]) - out, 0.0)
            out = float(table.output_bytes[j])
            aux += float(aux_col[j]) if training else 0.0
            cols["output_bytes"][head] = out + aux
            for c in ("flops", "weight_bytes", "params", "saved_bytes", "transcendentals"):
                cols[c][head] += float(getattr(table, c)[j])
            own, name = str(table.name[j]), str(table.name[head])
            for prefix in (name + ".", name.rsplit(".", 1)[0] + "."):  # its own, a sibling
                if own.startswith(prefix):
                    own = own[len(prefix) :]
                    break
            names[head] += "+" + own
            keep[j] = False
            continue
        head = j if str(table.kind[j]) in GEMM_KINDS else -1
        out, aux = float(table.output_bytes[j]), 0.0
    return replace(
        table,
        name=np.array(names, dtype=str)[keep],
        kind=table.kind[keep],
        count=table.count[keep],
        gemm_groups=table.gemm_groups[keep],
        gemm_m=table.gemm_m[keep],
        gemm_n=table.gemm_n[keep],
        gemm_k=table.gemm_k[keep],
        fuse_aux=None,
        cache_bytes=None if table.cache_bytes is None else table.cache_bytes[keep],
        **{c: v[keep] for c, v in cols.items()},
    )


def with_backward(
    table: LayerTable, first_input_grad: bool, frozen: np.ndarray | None = None
) -> LayerTable:
    """Training step costs per layer: the forward pass plus its backward pass.

    GEMM-like layers (Y = A.B, B being weights or a second activation) need dA = dY.B^T and
    dB = A^T.dY: twice the forward FLOPs; they read dY twice plus A and B, and write dA and dB.
    Other layers: backward FLOPs taken as twice the forward FLOPs (an approximation: a
    derivative costs about as much again as the function); they read dY and the saved input
    and write dX (and the gradient of their parameters, if any). Transcendentals: an
    activation's derivative evaluates its function again (tanh for GELU, the sigmoid for
    SiLU), a fused attention's backward its exponentials: twice the forward's; softmax's
    backward (y (dy - sum y dy)) none.
    `first_input_grad=False`: the first row's input is the model's input (data, not an
    activation), so its input gradient is neither computed nor written: a GEMM-like first
    row runs the forward and dB only (2x the forward FLOPs, B read once, dY read once);
    any other first row (an embedding lookup, whose input is token ids) writes no dX.
    `frozen` (a LoRA fine-tune's base, Hu et al. 2021): rows whose weights get no gradient.
    A frozen GEMM-like row with weights runs dA = dY B^T only (the input gradient still
    flows: 1x its forward FLOPs, B read again, dY read once, no saved A read, no dW
    written), so forward + backward is 2x its forward FLOPs, not 3x; any other frozen row
    (a norm's scale) still computes its dX but writes no dW, and a frozen first row with
    no input gradient (the embedding lookup) runs no backward at all.
    The optimizer update is added by `training_step`.
    """
    gemm = np.isin(table.kind, list(GEMM_KINDS))
    w, x, y = table.weight_bytes, table.input_bytes, table.output_bytes
    dx = np.ones(len(table))  # rows whose input gradient is computed
    if not first_input_grad and len(table) and table.count[0] == 1:
        dx[0] = 0.0
    # rows whose second operand gets a gradient: trained weights, or an activation
    db = np.ones(len(table)) if frozen is None else 1.0 - (frozen & (w > 0))
    dgemm = gemm * dx  # GEMMs that run dA = dY B^T
    other = np.where(db + dx > 0, 2.0, 0.0)  # a non-GEMM row's backward, if it has one
    return replace(
        table,
        flops=table.flops * (1.0 + np.where(gemm, db + dgemm, other)),  # forward + backward
        weight_bytes=w + w * dgemm,  # GEMMs read B again for dA
        input_bytes=x + np.where(gemm, (db + dgemm) * y + x * db, (y + x) * other / 2),
        output_bytes=y + x * dx * np.where(gemm, 1.0, other / 2) + w * db,  # y, dX, dW
        transcendentals=table.transcendentals * np.where(table.kind == "softmax", 1.0, 2.0),
    )


def training_step(
    table: LayerTable,
    bytes_per_element: int,
    optimizer: str | None,
    first_input_grad: bool,
    frozen: np.ndarray | None = None,
) -> LayerTable:
    """Forward + backward (`with_backward`) + the optimizer update of each layer's parameters:
    the update's FLOPs and its reads and writes of gradients, weights, fp32 master copy and
    optimizer state (see `optimizers.update_bytes`). A row's parameters are updated once a
    step however many times the row repeats (shared layers too), so the per-instance cost is
    the row's update divided by its count. `optimizer=None` leaves the update out; `frozen`
    rows (a LoRA base) have no update."""
    step = with_backward(table, first_input_grad, frozen)
    if optimizer is None:
        return step
    from .optimizers import UPDATE_FLOPS, update_bytes

    read, written = update_bytes(optimizer, bytes_per_element)
    trained = table.params if frozen is None else np.where(frozen, 0.0, table.params)
    per_instance = trained / np.maximum(table.count, 1)
    return replace(
        step,
        flops=step.flops + UPDATE_FLOPS[optimizer] * per_instance,
        weight_bytes=step.weight_bytes + read * per_instance,
        output_bytes=step.output_bytes + written * per_instance,
    )
