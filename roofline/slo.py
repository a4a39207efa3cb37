"""The SLO planner checked by simulation (`roofline serve --rate`): the fewest devices of
each type that serve a Poisson stream of requests within the latency targets, found with
the iteration-level simulation (simulate.py) instead of a steady-state formula.

For one device type and a tensor-parallel layout of t devices (a replica):
  1. the replica's engine (traffic.engine: its scheduling defaults) and its KV blocks;
  2. lambda*(t): the largest rate a second one replica takes within the targets. A rate
     lambda is met when a simulated Poisson stream of SIM_REQUESTS requests at lambda keeps
     up (not saturated: simulate.summary) and the TTFT and TPOT at the targets' quantiles
     (mean, or p50 ... p99) are within them. The same seeded stream, scaled in time, is
     used at every lambda, so "met" only turns false as lambda grows: a galloping search
     from lambda0 (one request a second) by doubling or halving, then bisection to 1 %;
  3. replicas = ceil(rate / lambda*(t)): requests are spread over the replicas at random,
     so each sees a Poisson stream at rate / replicas <= lambda*(t), which it meets;
     devices = replicas x t.
The plan is the layout with the fewest devices (then the fewest a replica), simulated again
at its own rate a replica for the figures it reports (mean, p50, p90, p99 of TTFT, TPOT and
end-to-end latency). With --dp the replicas are given: the plan says whether they meet the
targets, and the most they serve. A rate that needs more than serve.MAX_DEVICES devices is
refused with the most that many serve; a layout that misses a target at any rate (the
prefill alone too slow, or the decode step of one request) is refused with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .energy import Site
from .errors import FieldError, RooflineError
from .hardware import Device
from .scenario import RunConfig
from .serve import MAX_DEVICES, TENSOR_WAYS, Slo, check_decoder, check_lengths
from .simulate import (
    IterationCost,
    SimulationResult,
    energy_figures,
    kv_blocks,
    simulate,
    simulation_energy,
)
from .traffic import Engine, Requests, arrivals, engine
from .workloads import Workload

SIM_REQUESTS = 2000  # requests a check simulates
PRECISION = 0.01  # lambda* to this relative width
FIGURES = ("ttft", "tpot", "e2e")


@dataclass(frozen=True)
class Targets:
    """rate requests a second; TTFT and TPOT targets (s), each held at a quantile (None:
    the mean)."""

    rate: float
    ttft_s: float
    tpot_s: float
    ttft_quantile: float | None = None
    tpot_quantile: float | None = None

    def __post_init__(self) -> None:
        Slo(self.rate, self.ttft_s, self.tpot_s)  # the formula planner's ranges, checked there
        for name, q in (("ttft_percentile", self.ttft_quantile),
                        ("tpot_percentile", self.tpot_quantile)):  # fmt: skip
            if q is not None and q not in (0.5, 0.9, 0.99):
                raise FieldError(name, q, "a quantile the simulation reports: 0.5, 0.9, 0.99")

    def key(self, figure: str, quantile: float | None) -> str:
        return f"{figure}_mean_s" if quantile is None else f"{figure}_p{round(quantile * 100)}_s"

    def held(self, quantile: float | None) -> str:
        return "mean" if quantile is None else f"p{round(quantile * 100)}"

    def met(self, stats: dict[str, float | None]) -> bool:
        ttft = stats.get(self.key("ttft", self.ttft_quantile))
        tpot = stats.get(self.key("tpot", self.tpot_quantile))
        return (
            not stats.get("saturated")
            and ttft is not None
            and ttft <= self.ttft_s
            and (tpot is None or tpot <= self.tpot_s)  # None: one-token requests
        )


@dataclass(frozen=True)
class SimPlan:
    """The plan for one device type (see the module docstring); `reason` set (and the
    figures None) when nothing meets the targets. `stats`: the simulation of one replica
    at its rate (rate / replicas)."""

    device: Device
    engine: str
    tensor: int | None = None
    replicas: int | None = None
    devices: int | None = None
    max_rate_per_replica: float | None = None  # lambda*
    stats: dict[str, float | None] | None = None
    cost_per_million_output_tokens: float | None = None
    reason: str = ""
    max_requests_per_s: float | None = None  # when refused: the most it serves
    energy: dict[str, Any] | None = None  # simulate.energy_figures of the plan's replicas


@dataclass
class _Replica:
    tensor: int
    run: RunConfig
    engine: Engine
    cost: IterationCost
    blocks: int


def _stream(n: int, rate: float, prompt: int, output: int, seed: int) -> Requests:
    return Requests(arrivals(n, rate, seed=seed), np.full(n, prompt), np.full(n, output))


def _simulate(w: Workload, device: Device, rep: _Replica, req: Requests) -> SimulationResult:
    return simulate(w, rep.run, device, req, rep.engine, cost=rep.cost, blocks=rep.blocks)


def _most_rate(
    w: Workload, device: Device, rep: _Replica, targets: Targets, prompt: int, output: int,
    seed: int,
) -> float | str:  # fmt: skip
    """lambda*: the largest rate a replica meets the targets at, or why none."""

    def met(rate: float) -> bool:
        r = _simulate(w, device, rep, _stream(SIM_REQUESTS, rate, prompt, output, seed))
        return targets.met(r.stats)

    low = 1e-3  # one request every 1,000 s: as good as alone
    alone = _simulate(w, device, rep, _stream(8, low, prompt, output, seed)).stats
    if not targets.met(alone):
        ttft, tpot = alone["ttft_mean_s"], alone["tpot_mean_s"]
        return (
            f"tp {rep.tensor}: a request alone takes {ttft:.3g} s to its first token and "
            f"{0.0 if tpot is None else tpot:.3g} s a token after it, over the targets"
        )
    lo, hi = low, 1.0
    while met(hi):  # gallop up
        lo, hi = hi, 2 * hi
        if hi > 1e7:
            return hi
    while hi / 2 > lo and not met(hi / 2):  # gallop down
        hi /= 2
    lo = max(lo, hi / 2)
    while hi - lo > PRECISION * lo:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if met(mid) else (lo, mid)
    return lo


def plan_simulated(
    w: Workload,
    run: RunConfig,
    device: Device,
    prompt: int,
    output: int,
    targets: Targets,
    tensor_ways: tuple[int, ...] = TENSOR_WAYS,
    engine_name: str = "vllm",
    replicas: int | None = None,
    seed: int = 0,
    at: Site | None = None,
) -> SimPlan:
    """The fewest `device`s that serve targets.rate within the targets (module docstring);
    `replicas` fixed: whether that many meet them. `at`: the site the energy is counted at
    [default: energy.site()'s sourced defaults]."""
    check_decoder(w, run, device)
    check_lengths(w, prompt, output)
    found: list[tuple[_Replica, float]] = []  # (replica, lambda*) of each layout
    reasons = []
    for t in tensor_ways:
        layout = replace(run.layout, data=1, tensor=t, pipeline=run.layout.pipeline)
        try:
            w.check_layout(layout)
            lay_run = replace(run, phase="decode", layout=layout)
            eng = engine(engine_name, device, max_seq=w.arch.max_seq, tensor=t)
            blocks = kv_blocks(w, lay_run, device, eng)
            need = -(-(prompt + output) // eng.block_tokens)
            if blocks < need:
                reasons.append(f"tp {t}: the weights leave no room for a request's KV cache")
                continue
            cost = IterationCost(w, lay_run, device, eng.max_batched_tokens, eng.sustained)
        except RooflineError as exc:
            reasons.append(f"tp {t}: {exc}")
            continue
        rep = _Replica(t, lay_run, eng, cost, blocks)
        most = _most_rate(w, device, rep, targets, prompt, output, seed)
        if isinstance(most, str):
            reasons.append(most)
        else:
            found.append((rep, most))
    if not found:
        return SimPlan(device, engine_name, reason="; ".join(reasons) or "no layout fits")

    def size(rep: _Replica) -> int:  # devices a replica takes
        return rep.tensor * rep.run.layout.pipeline

    reason = ""
    if replicas is None:  # the fewest devices (then the fewest a replica: found in order)
        rep, most = min(found, key=lambda f: math.ceil(targets.rate / f[1]) * size(f[0]))
        n = math.ceil(targets.rate / most)
        if n * size(rep) > MAX_DEVICES:
            rep, most = max(found, key=lambda f: (MAX_DEVICES // size(f[0])) * f[1])
            top = MAX_DEVICES // size(rep)
            return SimPlan(
                device, engine_name, reason=(
                    f"{targets.rate:,g} requests/s needs more than {MAX_DEVICES:,} "
                    f"{device.key}; the most {MAX_DEVICES:,} serve within the targets is "
                    f"{top * most:,.4g} requests/s (tp {rep.tensor})"
                ), max_requests_per_s=top * most,
            )  # fmt: skip
    else:  # given replicas: the smallest layout they meet the targets with
        n = replicas
        meeting = [f for f in found if f[1] * n >= targets.rate]
        rep, most = meeting[0] if meeting else max(found, key=lambda f: f[1])
        if not meeting:
            reason = (
                f"{n:,} replicas of tp {rep.tensor} miss the targets at {targets.rate:,g} "
                f"requests/s; they serve at most {n * most:,.4g} requests/s"
            )
    devices = n * size(rep)
    result = _simulate(w, device, rep, _stream(SIM_REQUESTS, targets.rate / n, prompt, output,
                                                seed))  # fmt: skip
    energy = energy_figures(simulation_energy(result, device, size(rep), at), result, n)
    per_million = None
    if device.price is not None:
        per_million = devices * device.price.per_hour / 3600 / (targets.rate * output) * 1e6
    return SimPlan(
        device, engine_name, rep.tensor, n, devices, most, result.stats, per_million, reason,
        max_requests_per_s=n * most if reason else None, energy=energy,
    )  # fmt: skip
