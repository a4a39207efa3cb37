"""From bound to expectation: what a layer takes on a real device, and why.

The roofline bound of a layer is max(F / P, B / W): its FLOPs F at the datasheet peak P and
its bytes B at the datasheet bandwidth W. The expected time replaces each ideal with what
the device reaches, and adds what every kernel costs:

  expected = max(F / (P_a x q), B / W, X / R, n x o)

  P_a   achievable dense GEMM FLOP/s for the datatype (measured: a vendor library's best
        large GEMM), W_a achievable memory bandwidth (a stream copy/triad); both from the
        device file, or the documented default for its vendor (hardware/defaults/).
  q     tile and wave quantization of a GEMM-like layer (1 for other kinds). A library
        splits the output (groups x m x n) into tiles of tm x tn, tm = the power of two
        >= m clipped to [16, tile_m] (skinny tiles for small m, as GEMV-like kernels do),
        tn likewise from n and tile_n; when the tiles are fewer than the U compute units it
        also splits the k dimension (split-K) into s parts of at least SPLIT_K_MIN, so that
        the parts fill the units; then it runs them in waves:
            tiles = groups x ceil(m / tm) x ceil(n / tn)
            s     = 1 if tiles >= U, else max(1, min(floor(U / tiles), floor(k / SPLIT_K_MIN)))
            waves = ceil(tiles x s / U)
            q     = (groups x m x n / (tiles x tm x tn)) x (tiles x s / (waves x U))
        the padding share times the busy share of the units: q = 1 when full tiles fill
        every unit in every wave; it falls with padding (m = 129 on 128-row tiles) and with
        a last wave that leaves units idle (NVIDIA, "Matrix Multiplication Background User's
        Guide": tile and wave quantization; split-K as CUTLASS and cuBLAS use it for small
        outputs; SPLIT_K_MIN = 256 is this model's assumption: 4 k-steps of 64).
        A fused attention row (FlashAttention) has q times min(1, A / P_a) besides, where
        the device file gives A, the FLOP/s its fused attention kernel was measured to
        reach (`efficiency.attention`; FlashAttention-2's published rates), and in training
        x ATTENTION_TRAINING (3 / 3.5: the published rate counts a backward of 2.5
        forwards, the table 2); the loss `attention kernel`. Without A: the GEMM ceiling.
        Attention computes in its own datatype (RunConfig.attention_dtype; by default an
        fp8 or int8 run's attention is bf16, as its stack runs it): A is then that
        datatype's measured attention rate, else its GEMM ceiling (no training factor), so
        an fp8 run's attention row takes the time it takes at bf16 (its bytes aside).
  W     W_a, or the cache's bandwidth W_c when the layer reads no weights and one
        instance of it (inputs and outputs: B / n) fits the cache of C bytes: the previous
        layer has just written its input there and its output stays there for the next.
        (A layer's weights were last read a whole pass ago: from DRAM.) Only where the
        device file gives a cache tier (`efficiency.cache`, measured by `roofline
        measure`); the datasheet roofline and GPUs' files use DRAM for every layer.
  X, R  the layer's transcendental evaluations (exp, tanh, erf: softmax, GELU, SiLU, the
        LSTM's gates) and the device's rate for them (elements/s, `efficiency.
        transcendentals_per_s`): a CPU evaluates tanh in tens of cycles, so an activation
        that is a few FLOPs an element in the count can take longer than its memory
        traffic. Not modelled (R absent) on GPUs, whose special-function units are not
        the binding limit for these memory-bound layers.
        Where the device file gives a measured GEMM curve (`efficiency.gemm_curve`: FLOP/s
        by the GEMM's smallest dimension, as `roofline measure` writes for a CPU), q is
        instead the curve's rate at min(m, n, k) over P_a, interpolated in log size
        (the end points beyond the curve): a BLAS's packing and skinny-shape losses as
        measured, not as a GPU's tiles would have them.
  n, o  the layer's kernels and the per-kernel overhead: one kernel per layer instance in
        a forward pass (an op fused into its GEMM's epilogue has none of its own); in
        training 3 per GEMM-like instance (forward, input gradient, weight gradient; also
        for a first layer without its input gradient, one launch too many) and 2 per
        other instance. The host issues one kernel every o
        (launch and synchronisation), so a kernel takes at least o: short kernels (decode
        at small batch) wait on the launches, longer ones hide them.

The gap between bound and expectation is split into named losses, each the time it adds
when the terms are switched on one after another: `compute ceiling` and `bandwidth
ceiling` (P -> P_a or W -> W_a, by which one binds), `quantization` (q), `attention kernel`
(a fused attention row's own ceiling), `cache` (W_a ->
W_c: negative, time saved), `transcendentals` (X / R) and `kernel overhead` (n x o).
With RunConfig.ideal every term is off: expected = bound.

The formula is written once, as scalar helpers (_numba_kernels: tile_side, gemm_tiles,
gemm_waves, curve_at, gemm_share, stream_bandwidth, layer_time): the sweep's grid kernel
calls them compiled by numba, the per-run path (`expected_times`, through
kernels.expected_ladder) as plain Python (a run does not load numba), and the two agree to
the last bit. This module holds the constants and the array doors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .layers import GEMM_KINDS, LayerTable, fused_attention

Array = Any
LOSSES = (
    "compute ceiling",
    "bandwidth ceiling",
    "quantization",
    "attention kernel",
    "cache",
    "transcendentals",
    "kernel overhead",
)
# FlashAttention's published rates count a backward pass of 2.5 forwards (five GEMMs
# against two: the scores are recomputed; Dao 2023, section 4.1); a training row here
# counts 2 (with_backward), so at the published rate its time is 3.5 / 3 of its count's
ATTENTION_TRAINING = 3.0 / 3.5
MIN_TILE = 16  # the smallest tile side a tensor-core GEMM kernel uses (one MMA)
SPLIT_K_MIN = 256  # the least k one split-K part works on


@dataclass(frozen=True)
class Ceilings:
    """What one device reaches in practice for one datatype, and where each figure is from."""

    flops_per_s: float  # achievable dense GEMM FLOP/s
    bandwidth_bytes_per_s: float  # achievable memory bandwidth
    compute_units: int  # SMs, CUs, MXUs: what GEMM tiles are spread over
    tile_m: int
    tile_n: int
    kernel_overhead_s: float
    source: str  # where the figures come from
    default: bool  # True: some figure is a vendor default, not measured on this device
    gemm_measured: bool = False  # the GEMM figure is the device file's own
    bandwidth_measured: bool = False  # the bandwidth figure is the device file's own
    transcendentals_per_s: float | None = None  # exp/tanh evaluations a second (None: free)
    cache_bytes: float | None = None  # a layer instance this small streams from the cache
    cache_bandwidth_bytes_per_s: float | None = None
    # measured GEMM FLOP/s by the smallest dimension ((size, FLOP/s), ...): replaces q
    gemm_curve: tuple[tuple[float, float], ...] | None = None
    # what a fused FlashAttention kernel reaches (None: not measured, the GEMM ceiling)
    attention_flops_per_s: float | None = None
    # attention_flops_per_s is a measured fused kernel's rate, counted as FlashAttention
    # counts a backward pass (x ATTENTION_TRAINING in training); False: it is the GEMM
    # ceiling of the datatype attention computes in (another than the GEMMs': an fp8 run's
    # attention at the bf16 ceiling, hardware.run_ceilings)
    attention_kernel: bool = True
    attention_dtype: str = ""  # the datatype attention computes in ("": the GEMMs')

    @property
    def attention_ratio(self) -> float:
        """The fused attention kernel's FLOP/s over the GEMM ceiling (0: not measured)."""
        a = self.attention_flops_per_s
        return a / self.flops_per_s if a and self.flops_per_s > 0 else 0.0


def gemm_utilization(
    groups: Array, m: Array, n: Array, k: Array, units: int, tile_m: int, tile_n: int
) -> Array:
    """q of the module docstring: the share of the compute units' tile slots doing useful
    work. Arrays broadcast; rows with groups == 0 (not GEMMs) get 1. The scalar helpers the
    expected time runs (kernels.gemm_share)."""
    from .kernels import gemm_share

    return gemm_share(groups, m, n, k, units, tile_m, tile_n, SPLIT_K_MIN, MIN_TILE)


def attention_factor(ratio: Array, training: bool, kernel: Array = True) -> Array:
    """The attention rate over the GEMM ceiling (at most 1), as a share of that ceiling for
    a row of this table's FLOP count: a measured fused kernel's (`kernel`) in training x
    ATTENTION_TRAINING; another datatype's GEMM ceiling (not `kernel`) as it is. A ratio of
    0 means not measured: 1, the GEMM ceiling."""
    ratio = np.asarray(ratio, dtype=np.float64)
    counted = np.where(kernel, ATTENTION_TRAINING if training else 1.0, 1.0)
    share = np.minimum(1.0, ratio) * counted
    return np.where(ratio > 0, share, 1.0)


def curve_rate(size: Array, curve: tuple[tuple[float, float], ...]) -> Array:
    """The curve's FLOP/s at `size` (the smallest GEMM dimension), linear in log size
    between its points, its end values beyond them (kernels.curve, as the expected time
    reads it)."""
    from .kernels import curve as read

    xs = np.log([p[0] for p in curve])
    ys = np.array([p[1] for p in curve])
    return read(np.log(np.maximum(np.asarray(size, dtype=np.float64), 1.0)), xs, ys)


def kernels(table: LayerTable, training: bool) -> np.ndarray:
    """Kernels each row launches, all repeats."""
    per_instance = np.ones(len(table))
    if training:
        per_instance = np.where(np.isin(table.kind, list(GEMM_KINDS)), 3.0, 2.0)
    return np.asarray(per_instance * table.count)


@dataclass(frozen=True)
class Expected:
    """Per layer (all repeats): the expected time and what each loss adds to the bound."""

    time_s: np.ndarray  # (L,)
    losses: dict[str, np.ndarray]  # name -> (L,) seconds, names as in LOSSES


def expected_times(
    table: LayerTable,
    flops: np.ndarray,
    nbytes: np.ndarray,
    bound_s: np.ndarray,
    ceilings: Ceilings,
    training: bool,
    tensor: int = 1,
) -> Expected:
    """The expected time of each layer (totals over repeats) on one device of a
    tensor-parallel group of `tensor`. `flops` and `nbytes` are the table's totals over
    repeats (its FLOPs, bytes, transcendentals and a GEMM's n are divided by `tensor`, its
    kernel launches are not: every device launches every kernel); `bound_s` is the roofline
    bound of each layer's share. The terms are the scalar helpers the sweep's grid kernel
    runs (kernels.expected_ladder), switched on one after another."""
    from .kernels import Expectation, expected_ladder

    c = ceilings
    curve = c.gemm_curve or ()
    count = np.maximum(table.count, 1)
    e = Expectation(
        shape=np.stack([table.gemm_groups, table.gemm_m, table.gemm_n, table.gemm_k])[..., None],
        kernel_counts=kernels(table, training)[:, None],
        keep=None,
        ceiling_flops=[[c.flops_per_s]],
        ceiling_bandwidth=[c.bandwidth_bytes_per_s],
        units=[c.compute_units],
        tile_m=[c.tile_m],
        tile_n=[c.tile_n],
        overhead_s=[c.kernel_overhead_s],
        tensor=tensor,
        split_k_min=SPLIT_K_MIN,
        min_tile=MIN_TILE,
        transcendentals=(table.transcendentals * table.count)[:, None],
        instance_bytes=(nbytes / count)[None, :, None],
        cacheable=table.weight_bytes == 0,
        curve_x=[np.log([p[0] for p in curve])] if curve else None,
        curve_y=[[[p[1] for p in curve]]] if curve else None,
        curve_n=[len(curve)],
        transcendental_rate=[c.transcendentals_per_s or 0.0],
        cache_bytes=[c.cache_bytes or 0.0],
        cache_bandwidth=[c.cache_bandwidth_bytes_per_s or 0.0],
        attention_layers=fused_attention(table.name),
        attention_share=[[attention_factor(c.attention_ratio, training, c.attention_kernel)]],
    )
    c1, c2q, c2, c3, c4, total = expected_ladder(flops, nbytes, e)
    compute_binds = flops / c.flops_per_s >= nbytes / c.bandwidth_bytes_per_s
    ceiling_loss = c1 - bound_s
    losses = {
        "compute ceiling": np.where(compute_binds, ceiling_loss, 0.0),
        "bandwidth ceiling": np.where(compute_binds, 0.0, ceiling_loss),
        "quantization": c2q - c1,
        "attention kernel": c2 - c2q,
        "cache": c3 - c2,
        "transcendentals": c4 - c3,
        "kernel overhead": total - c4,
    }
    return Expected(total, losses)
