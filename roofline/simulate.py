"""Serving under traffic: an iteration-level simulation of one deployment (a replica of a
model on a tensor/pipeline layout of one device type) under a stream of requests.

The engine runs in iterations, one forward pass each, as vLLM's V1 scheduler does:
  1. the running requests in the order they were admitted: one decode token each, or the
     next chunk of a prompt still being prefilled, within the iteration's token budget
     (`max_batched_tokens`) and the running limit (`max_num_seqs`);
  2. then waiting requests, first come first served, while the budget, the running limit
     and the KV blocks allow (chunked prefill: a prompt may start with a chunk and go on in
     the next iterations);
  3. KV memory is paged in blocks of `block_tokens`; when a running request needs a block
     and none is free, the request admitted last is preempted: its blocks are freed and it
     goes back to the front of the queue, to prefill its prompt and the tokens it had made
     again (vLLM's recompute mode).
A request's first token comes at the end of the iteration that finishes its prompt; each
later iteration it takes part in makes one more token. Engines that do not mix (vLLM before
V1) run the waiting prompts first, whole, in an iteration of their own, and decode only when
no prompt can start. The `static` engine instead runs a
batch of up to `max_num_seqs` waiting requests: one prefill of all their prompts, then decode
steps until the last of them is done, then the next batch.

An iteration's time comes from the expected-time model of the step (step.step_time), taken
apart once per deployment into the parts a mixed batch is made of (`IterationCost`):
  linear(T)          a decode step of T tokens at context 1: the weights read once, every
                     GEMM at m = T, the tensor-parallel all-reduces, the kernel launches;
                     evaluated at T = 1, 2, 4 ... 32, every 32 to 1024, then 12.5 % apart,
                     and interpolated linearly between
  D(sum ctx)         the decode tokens' attention over their contexts: a decode step whose
                     requests hold sum(ctx) tokens in all, less the same step at context 1
                     (it grows with the KV bytes read, once the attention kernels take longer
                     than their launch), on sum(ctx) = 1, 2, 4 ... and interpolated
  A(k + n) - A(k)    a prefill chunk of n tokens after k already cached: A(s) is a prefill of
                     s tokens less linear(s) (the causal attention over the prompt so far),
                     on the same grid from 32; the difference is the attention of
                     the chunk's queries over all k + n keys
A prefill chunk is counted at linear's cost per token, logits included (the LM head of a
prompt's tokens, which an engine skips but for the last: a few per cent of a token's cost).

The scheduler's loop is compiled (`_sim_kernel.run_engine`, arrays in and out): a decode
step in which nothing changes but the contexts is run as a block of steps at once, and the
iteration log is thinned beyond LOG_ROWS rows, so 10^6 requests run in seconds in a fixed
memory beside the per-request records (engines and request streams are in traffic.py).

Results per request (arrival, first token, finish, tokens, preemptions) and per iteration
(time, tokens, running, waiting, KV blocks in use); summaries in `SimulationResult`.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._sim_kernel import NO_ROOM, run_engine
from .calibration import sustained_share
from .energy import Energy, Site, iteration_energy
from .errors import FieldError
from .hardware import Device
from .memory import kv_cache_bytes, memory_breakdown
from .scenario import RunConfig
from .serve import check_decoder, check_lengths
from .step import step_time
from .traffic import Engine, Requests
from .workloads import Workload

QUANTILES = (0.5, 0.9, 0.99)
LOG_ROWS = 1 << 16  # iteration log rows kept at most (_sim_kernel._log thins it beyond)


KERNELS = ("compute", "recompute", "bubble")  # the parts a sustained share divides (step.py)


class IterationCost:
    """The expected time of one iteration of a mixed batch (see the module docstring).

    Each step is evaluated once as kernels K (what a sustained share s divides) and the
    rest C (the collectives): its time at share s is K / s + C, so `at(s)` gives the same
    cost at another share without evaluating a step again (the stack calibration fits
    a share per serving stack that way)."""

    def __init__(
        self, w: Workload, run: RunConfig, device: Device, max_tokens: int,
        share: float | None = None,
    ) -> None:  # fmt: skip
        decode = replace(run, phase="decode", seq=None, batch=1, context=1)

        def parts(r: RunConfig) -> tuple[float, float, float]:
            step = step_time(w, replace(r, sustained=1.0), device)
            if step.expected_s is None:
                raise FieldError("device", device.key, step.reason or "no expected time")
            named = dict(step.parts)
            kernels = sum(named.get(k, 0.0) for k in KERNELS)
            return kernels, step.expected_s - kernels, step.total_s or 0.0

        def pairs(runs: list[RunConfig]) -> np.ndarray:
            return np.array([parts(r) for r in runs], dtype=np.float64).reshape(-1, 3)

        self.tokens = np.array(_grid(max_tokens), dtype=np.float64)
        self._linear = pairs([replace(decode, batch=int(t)) for t in self.tokens])
        limit = w.arch.max_seq or 1 << 20
        # the decode attention of S cached tokens in all: S / b tokens each for b requests,
        # b the fewest that keep each context within the model's limit
        total = [1 << i for i in range(int(math.log2(max(2, max_tokens) * limit)) + 1)]
        self.cached = np.array([0.0, *total])
        sizes = [min(max(1, -(-t // (limit - 1))), t) for t in total]
        at_one = pairs([replace(decode, batch=b) for b in sizes])
        at_ctx = pairs([replace(decode, batch=b, context=max(1, t // b))
                        for t, b in zip(total, sizes, strict=True)])  # fmt: skip
        self._decode = np.vstack([[0.0, 0.0, 0.0], at_ctx - at_one])
        seqs = [s for s in _grid(limit) if s >= 32] or [limit]
        prefill = replace(run, phase="prefill", batch=1, context=None, logits="all")
        self.prompt = np.array([0.0, *seqs])
        whole = pairs([replace(prefill, seq=s) for s in seqs])
        lin = np.column_stack([np.interp(seqs, self.tokens, self._linear[:, j]) for j in (0, 1, 2)])
        self._attention = np.vstack([[0.0, 0.0, 0.0], whole - lin])
        # the roofline bound of the same parts (a share does not change it): an iteration's
        # bound over its expected time is the activity the power model needs (energy.py)
        self.linear_bound_s = self._linear[:, 2]
        self.decode_bound_s = np.maximum.accumulate(np.maximum(self._decode[:, 2], 0.0))
        self.attention_bound_s = np.maximum.accumulate(np.maximum(self._attention[:, 2], 0.0))
        ideal = run.ideal
        self.share = 1.0 if ideal else sustained_share(False, False, run.sustained or share)
        self._apply()

    def _apply(self) -> None:
        s = self.share
        self.linear_s = self._linear[:, 0] / s + self._linear[:, 1]
        decode = self._decode[:, 0] / s + self._decode[:, 1]
        self.decode_s = np.maximum.accumulate(np.maximum(decode, 0.0))
        attention = self._attention[:, 0] / s + self._attention[:, 1]
        self.attention_s = np.maximum.accumulate(np.maximum(attention, 0.0))

    def at(self, share: float) -> IterationCost:
        """The same cost at sustained share `share` (0, 1]."""
        if not 0 < share <= 1:
            raise FieldError("sustained", share, "a share above 0, <= 1")
        out = copy.copy(self)
        out.share = share
        out._apply()
        return out

    def linear(self, tokens: float) -> float:
        return float(np.interp(tokens, self.tokens, self.linear_s))

    def prompt_attention(self, cached: float) -> float:
        return float(np.interp(cached, self.prompt, self.attention_s))

    def decode_attention(self, cached: float) -> float:
        """The decode attention of `cached` tokens in all (the requests' contexts summed):
        the decode step at that context less the same step at context 1. It grows with the
        tokens read, and stays 0 while the attention kernels take no longer than their
        launch (the step model's kernel floor)."""
        return float(np.interp(cached, self.cached, self.decode_s))

    def decode_attention_steps(self, cached: np.ndarray) -> np.ndarray:
        """decode_attention of each of several totals."""
        out: np.ndarray = np.interp(cached, self.cached, self.decode_s)
        return out


def _grid(top: int) -> list[int]:
    """Token counts at which a cost is evaluated (and interpolated between): 1, 2, 4 ... 32,
    then every 32 to 1024 (where GEMM tiles make the cost step), then 12.5 % apart, to `top`."""
    points = [1, 2, 4, 8, 16, *range(32, 1025, 32)]
    while points[-1] < top:
        points.append(max(points[-1] + 32, round(points[-1] * 1.125 / 32) * 32))
    return [p for p in points if p < top] + [top]


@dataclass
class SimulationResult:
    engine: Engine
    blocks: int  # KV blocks the engine holds
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    preemptions: np.ndarray
    # per iteration (or block of steady decode steps): end time, tokens (a block: tokens of
    # one step), requests running and waiting, KV blocks in use, duration (s)
    iterations: np.ndarray
    stats: dict[str, float | None] = field(default_factory=dict)
    busy_s: float = 0.0  # the iterations' expected time, summed (the rest of the span: idle)
    bound_s: float = 0.0  # their roofline bound, summed (energy.py: the activity)


def kv_blocks(w: Workload, run: RunConfig, device: Device, engine: Engine) -> int:
    """KV blocks a replica holds: its devices' memory share the engine takes, less the
    weights and the working activations of a full iteration, over one block's bytes."""
    split = run.layout.model_split
    block = replace(run, phase="decode", seq=None, batch=1, context=engine.block_tokens)
    per_block = kv_cache_bytes(w, block.replica()) / split
    work = replace(run, phase="prefill", batch=1, seq=None, context=None)
    seq = min(engine.max_batched_tokens, w.arch.max_seq or engine.max_batched_tokens)
    m = memory_breakdown(w, replace(work, seq=seq))
    taken = float(m.params + m.activations)
    if engine.kv_of_free:  # the share of what the weights and the work leave (TensorRT-LLM)
        free = (device.memory_capacity_bytes - taken) * engine.memory_fraction
    else:  # the share of the whole memory, weights and work included (vLLM, SGLang)
        free = device.memory_capacity_bytes * engine.memory_fraction - taken
    return max(0, int(free // per_block)) if per_block > 0 else 0


def simulate(
    w: Workload,
    run: RunConfig,
    device: Device,
    requests: Requests,
    engine: Engine,
    cost: IterationCost | None = None,
    blocks: int | None = None,
    concurrency: int | None = None,
    prefix_tokens: int = 0,
) -> SimulationResult:
    """Run the request stream through one replica (see the module docstring); `blocks`:
    the KV blocks it holds [default: what the memory leaves, kv_blocks]. `concurrency`: a
    closed loop of that many clients instead of the stream's arrival times: the first
    `concurrency` requests come at 0, and each later one the moment one finishes."""
    check_decoder(w, run, device)
    longest = int(np.argmax(requests.prompt + requests.output))
    check_lengths(w, int(requests.prompt[longest]), int(requests.output[longest]))
    cost = cost or IterationCost(w, run, device, engine.max_batched_tokens, engine.sustained)
    blocks = kv_blocks(w, run, device, engine) if blocks is None else blocks
    bt = engine.block_tokens
    most = int(requests.prompt.max())
    if not engine.chunked and most > engine.max_batched_tokens:
        raise FieldError(
            "max_batched_tokens", engine.max_batched_tokens, f"{engine.name} prefills a prompt "
            f"whole, in one iteration: a prompt of {most:,} tokens needs a budget as large"
        )  # fmt: skip
    if not (isinstance(prefix_tokens, int) and prefix_tokens >= 0):
        raise FieldError("prefix_tokens", prefix_tokens, "a whole number of tokens >= 0")
    shared = min(prefix_tokens, int(requests.prompt.min()) - 1) // bt  # whole blocks only
    need_most = int(np.max(-(-(requests.prompt + requests.output) // bt)))
    if blocks < need_most:
        raise FieldError(
            "device", device.key, f"a request of {need_most * bt} tokens needs {need_most} KV "
            f"blocks; the devices hold {blocks} beside the weights (the engine takes "
            f"{engine.memory_fraction:.0%} of the memory)"
        )  # fmt: skip
    n = len(requests.arrival_s)
    arrival = requests.arrival_s.astype(np.float64)  # a copy: a closed loop fills it in
    prompt, output = requests.prompt.astype(np.int64), requests.output.astype(np.int64)
    if concurrency is not None:
        if not (isinstance(concurrency, int) and concurrency >= 1):
            raise FieldError("concurrency", concurrency, "a whole number of clients >= 1")
        arrival[:] = np.inf  # set as requests finish
        arrival[: min(concurrency, n)] = 0.0
    opened = min(concurrency, n) if concurrency is not None else n  # arrival times known
    status, first, finish, preempted, log, steps, busy, bound = run_engine(
        arrival, prompt, output, opened, blocks - shared, bt, shared, engine.max_num_seqs,
        engine.max_batched_tokens, engine.static, engine.mixed, engine.chunked,
        engine.reserve_output, engine.host_overhead_s,
        cost.tokens, cost.linear_s, cost.cached, cost.decode_s, cost.prompt, cost.attention_s,
        cost.linear_bound_s, cost.decode_bound_s, cost.attention_bound_s,
        LOG_ROWS,
    )  # fmt: skip
    if status == NO_ROOM:
        raise FieldError("requests", None, "the KV cache cannot hold any request")
    log[:, 4] += shared  # blocks in use: the shared prefix's too
    result = SimulationResult(
        engine, blocks, arrival, first, finish, requests.prompt, requests.output, preempted,
        log,
    )  # fmt: skip
    result.busy_s, result.bound_s = busy, bound
    result.stats = summary(result) | {"iterations": float(steps),
                                      "prefix_cached_tokens": float(shared * bt),
                                      "busy_s": busy}  # fmt: skip
    return result


def _quantiles(x: np.ndarray, name: str) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        empty: dict[str, float | None] = {f"{name}_mean_s": None}
        return empty | {f"{name}_p{round(q * 100)}_s": None for q in QUANTILES}
    out: dict[str, float | None] = {f"{name}_mean_s": float(np.mean(x))}
    for q in QUANTILES:
        out[f"{name}_p{round(q * 100)}_s"] = float(np.quantile(x, q))
    return out


def summary(r: SimulationResult) -> dict[str, float | None]:
    """Means and quantiles of the latencies, throughput over the run, and the mean number
    of requests in the system (Little's law: it equals throughput x mean latency)."""
    ttft = r.first_token_s - r.arrival_s
    e2e = r.finish_s - r.arrival_s
    several = r.output > 1
    tpot = np.where(several, (r.finish_s - r.first_token_s) / np.maximum(r.output - 1, 1), np.nan)
    span = float(np.nanmax(r.finish_s) - r.arrival_s[0])
    stats: dict[str, float | None] = {}
    stats |= _quantiles(ttft, "ttft") | _quantiles(tpot, "tpot") | _quantiles(e2e, "e2e")
    decode_tokens = float(np.sum(np.where(several, r.output - 1, 0)))
    decode_time = float(np.nansum(np.where(several, r.finish_s - r.first_token_s, 0.0)))
    # inter-token latency: the mean gap between a request's tokens, over all tokens
    stats["itl_mean_s"] = decode_time / decode_tokens if decode_tokens else None
    stats["requests_per_s"] = len(r.arrival_s) / span if span > 0 else None
    stats["input_tokens_per_s"] = float(r.prompt.sum()) / span if span > 0 else None
    stats["output_tokens_per_s"] = float(r.output.sum()) / span if span > 0 else None
    stats["mean_in_system"] = float(np.nansum(e2e)) / span if span > 0 else None
    # saturation: while requests arrive, are they served as fast as they come? (a finite run
    # of a rate beyond the deployment still ends; its queue grows until the arrivals stop)
    window = float(r.arrival_s[-1] - r.arrival_s[0])
    if window > 0 and len(r.arrival_s) >= 20:
        offered = (len(r.arrival_s) - 1) / window
        served = float(np.sum(r.finish_s <= r.arrival_s[-1])) / window
        stats["offered_requests_per_s"] = offered
        stats["served_while_arriving_per_s"] = served
        stats["saturated"] = float(served < 0.9 * offered)
    else:
        stats["offered_requests_per_s"] = stats["served_while_arriving_per_s"] = None
        stats["saturated"] = None
    stats["preemptions"] = float(r.preemptions.sum())
    stats["iterations"] = float(len(r.iterations))
    stats["kv_blocks"] = float(r.blocks)
    return stats


def stage_stats(r: SimulationResult, edges: np.ndarray) -> list[dict[str, float | None]]:
    """The latencies of the requests that arrived in each stage (edges: the stages' start
    times and the end), with the rate offered and the requests finished within the stage."""
    out = []
    for start, end in itertools.pairwise(edges):
        inside = (r.arrival_s >= start) & (r.arrival_s < end)
        ttft = (r.first_token_s - r.arrival_s)[inside]
        e2e = (r.finish_s - r.arrival_s)[inside]
        several = inside & (r.output > 1)
        tpot = ((r.finish_s - r.first_token_s) / np.maximum(r.output - 1, 1))[several]
        row: dict[str, float | None] = {
            "start_s": float(start),
            "end_s": float(end),
            "requests": float(inside.sum()),
            "offered_requests_per_s": float(inside.sum()) / float(end - start),
            "finished_in_stage": float(np.sum(inside & (r.finish_s < end))),
        }
        row |= _quantiles(ttft, "ttft") | _quantiles(tpot, "tpot") | _quantiles(e2e, "e2e")
        out.append(row)
    return out


def goodput(r: SimulationResult, ttft_s: float | None, tpot_s: float | None) -> dict[str, float]:
    """Requests a second that met both targets (a request's TTFT, and its TPOT when it made
    more than one token), over the run's span; and the share of requests that met them."""
    ok = np.isfinite(r.finish_s)
    if ttft_s is not None:
        ok &= (r.first_token_s - r.arrival_s) <= ttft_s
    if tpot_s is not None:
        tpot = (r.finish_s - r.first_token_s) / np.maximum(r.output - 1, 1)
        ok &= (r.output <= 1) | (tpot <= tpot_s)
    span = float(np.nanmax(r.finish_s) - r.arrival_s[0])
    return {
        "goodput_requests_per_s": float(ok.sum()) / span if span > 0 else 0.0,
        "slo_attainment": float(ok.mean()),
    }


def simulation_energy(r: SimulationResult, device: Device, devices: int,
                      at: Site | None = None) -> Energy:  # fmt: skip
    """The energy of a replica of `devices` devices over the run (first arrival to last
    finish): P = idle + (max - idle) x u summed over the iterations is idle x span +
    (max - idle) x their bound summed (energy.py), gaps without work idle."""
    span = float(np.nanmax(r.finish_s) - r.arrival_s[0])
    return iteration_energy(device, max(span, 1e-12), r.bound_s, devices, at)


def energy_figures(e: Energy, r: SimulationResult, replicas: int = 1) -> dict[str, Any]:
    """The energy block of a simulation's answer: the facility's energy, per output token,
    the deployment's average power (replicas of the simulated one)."""
    tokens = float(r.output.sum())
    co2 = None if e.co2_g is None else e.co2_g / tokens
    power = e.average_power_w
    return e.as_dict() | {
        "joules_per_output_token": e.per(tokens),
        "co2_g_per_output_token": co2,
        "deployment_average_power_w": None if power is None else power * replicas,
    }


def stat_intervals(stats: dict[str, float | None]) -> dict[str, Any]:
    """The 80 % interval of each figure `validate --load` measures (intervals.py, from the
    residuals of the load points' fit half), as JSON: {name: {coverage, low, high, kind}}."""
    from .intervals import load_intervals
    from .load_runs import MEASURED

    figures = {k: v for k, v in stats.items() if k in MEASURED}
    return {k: None if iv is None else iv.as_dict() for k, iv in load_intervals(figures).items()}
