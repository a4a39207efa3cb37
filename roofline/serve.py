"""Serving an LLM: latency, throughput and how many requests the memory holds.

For a batch of B requests of P prompt tokens and O output tokens on a layout of one device
type (RunConfig: dtype, attention kernel, tensor/pipeline layout):

  ttft_s             time to first token: the prefill of the B prompts together, logits of
                     the last position only (step.step_time, expected; the bound beside it)
  tpot_s             time per output token: one decode step of the batch at the mean context,
                     P + O / 2 cached tokens
  output_tokens_per_s  a static batch's output over its whole requests, per replica:
                     B x O / (ttft + (O - 1) x tpot), the prefill counted (the meaning of
                     `validate --runs`); per device: / (tensor x pipeline)
  memory             per device at the end of the requests (P + O tokens cached each)
  fits               that memory within the device's capacity less the runtime reserve
  cost_per_million_output_tokens  the layout's devices x the device's price an hour, over
                     the output tokens it makes in an hour at the TPOT (null: no price)
  max_concurrency    the requests of P + O tokens whose KV cache fits beside the weights and
                     the working set, in the capacity less the reserve; the cache is paged
                     in blocks of BLOCK_TOKENS tokens (vLLM's default), so each request
                     takes whole blocks

Everything uses the expected-time model (efficiency.py, step.py) and says so; the roofline
bound is reported beside it.

Long (over 400 lines) on purpose: the serving figures and the SLO planner built on them
read together (the queue's mathematics is in queueing.py, traffic under load in
simulate.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import FieldError
from .hardware import Device
from .memory import MemoryBreakdown, kv_cache_bytes, memory_breakdown
from .queueing import fewest, queue_wait_quantile_s, queue_wait_s
from .scenario import RunConfig, check_size
from .step import step_time
from .workloads import Workload

BLOCK_TOKENS = 16  # tokens per KV-cache block (vLLM's default block size)


@dataclass(frozen=True)
class Request:
    """The requests a server handles: prompt and output tokens, and the share of each
    device's memory kept for the runtime (CUDA context, allocator, graphs)."""

    prompt: int
    output_tokens: int
    reserve: float = 0.1

    def __post_init__(self) -> None:
        check_size("prompt", self.prompt)
        check_size("output_tokens", self.output_tokens)
        ok = isinstance(self.reserve, int | float) and 0 <= self.reserve < 1
        if not ok:
            raise FieldError("reserve", self.reserve, "a share of the memory from 0 to < 1")


@dataclass(frozen=True)
class ServeResult:
    device: Device
    run: RunConfig  # the decode step
    request: Request
    ttft_s: float | None
    tpot_s: float | None
    ttft_bound_s: float | None
    tpot_bound_s: float | None
    output_tokens_per_s: float | None  # per replica
    output_tokens_per_s_per_device: float | None
    max_concurrency: int
    memory: MemoryBreakdown  # per device, P + O tokens cached
    fits: bool
    reason: str = ""  # why a figure is missing
    model: str = "expected"  # which time model the latencies come from
    cost_per_million_output_tokens: float | None = None  # in the device price's currency


def check_lengths(w: Workload, prompt: int, output: int) -> None:
    """A request's tokens within what the model attends to (its max_positions)."""
    limit = w.arch.max_seq
    if limit is not None and prompt + output > limit:
        raise FieldError(
            "prompt", prompt, f"+ {output} output tokens = {prompt + output}: {w.key} takes "
            f"at most {limit} tokens"
        )  # fmt: skip


def check_decoder(w: Workload, run: RunConfig, device: Device | None = None) -> None:
    """A decoder with a KV cache (what serving models), and a device with the run's
    datatype (Device.peak names what it has)."""
    if w.arch.kv_cache_elements(replace(run, phase="decode", context=1, seq=None)) <= 0:
        raise FieldError("model", w.key, "serve models a decoder with a KV cache")
    if device is not None:
        device.peak(run.dtype)


def serve(w: Workload, run: RunConfig, device: Device, request: Request) -> ServeResult:
    """`run` gives the batch, dtype, attention kernel and layout; its phase is set here."""
    check_decoder(w, run)
    p, o = request.prompt, request.output_tokens
    check_lengths(w, p, o)
    prefill = replace(run, phase="prefill", seq=p, context=None, logits="last")
    decode = replace(run, phase="decode", seq=None, context=p + o // 2)
    first = step_time(w, prefill, device)
    token = step_time(w, decode, device)
    end = replace(decode, context=p + o - 1)  # the last step: P + O tokens in the cache
    memory = memory_breakdown(w, end)
    usable = device.memory_capacity_bytes * (1 - request.reserve)
    split = run.layout.model_split
    blocks = math.ceil((p + o) / BLOCK_TOKENS) * BLOCK_TOKENS
    one = replace(end.replica(), batch=1, context=blocks - 1)  # whole blocks, one request
    per_request = kv_cache_bytes(w, one) / split
    free = usable - float(memory.params + memory.gradients + memory.optimizer + memory.activations)
    max_concurrency = max(0, int(free // per_request)) if per_request > 0 else 0
    tpot = token.expected_s
    ttft = first.expected_s
    whole = ttft + (o - 1) * tpot if ttft is not None and tpot is not None else None
    rate = run.local_batch * o / whole if whole else None
    cost = None
    if rate and device.price is not None:
        cost = split * device.price.per_hour / 3600 / rate * 1e6
    return ServeResult(
        device=device,
        run=decode,
        request=request,
        ttft_s=first.expected_s,
        tpot_s=tpot,
        ttft_bound_s=first.total_s,
        tpot_bound_s=token.total_s,
        output_tokens_per_s=rate,
        output_tokens_per_s_per_device=rate / split if rate else None,
        max_concurrency=max_concurrency,
        memory=memory,
        fits=float(memory.total) <= usable,
        reason=first.reason or token.reason,
        cost_per_million_output_tokens=cost,
    )


# ---------------------------------------------------------------- the SLO planner
TENSOR_WAYS = (1, 2, 4, 8)  # tensor-parallel layouts the planner tries (one node)
# The most devices of one type a plan may use. The largest GPU clusters built to date hold
# about 100,000 accelerators (xAI's Colossus, 2024; Meta's are 2 x 24,576); a plan past
# that is not a deployment anyone can build, so it is refused, with the largest rate this
# many devices serve within the SLOs. It also bounds the planner's search.
MAX_DEVICES = 100_000


@dataclass(frozen=True)
class Slo:
    """What the service must do: `rate` requests a second (each a Request), the time to
    first token at most `ttft_s` and the time per output token at most `tpot_s`."""

    rate: float
    ttft_s: float
    tpot_s: float
    # None: the TTFT target holds for the mean wait; q (0.5 .. 0.999): for its q-quantile
    ttft_percentile: float | None = None

    def __post_init__(self) -> None:
        for name, value, low, top in (
            # requests a second: from one in 11 days to far past any one service
            ("rate", self.rate, 1e-6, 1e5),
            ("ttft", self.ttft_s, 1e-6, 1e9),
            ("tpot", self.tpot_s, 1e-6, 1e9),
        ):
            ok = isinstance(value, int | float) and low <= value <= top  # also nan and inf
            if not ok:
                raise FieldError(name, value, f"must be from {low:g} to {top:g}")
        q = self.ttft_percentile
        if q is not None and not (isinstance(q, int | float) and 0.5 <= q <= 0.999):
            raise FieldError("ttft_percentile", q, "a quantile from 0.5 to 0.999")

    def wait(self, servers: int, service_s: float, rate: float | None = None) -> float:
        """The wait the TTFT target is held to: the mean, or the chosen quantile; at the
        Slo's rate, or at `rate` requests a second."""
        rate = self.rate if rate is None else rate
        if self.ttft_percentile is None:
            return queue_wait_s(servers, rate, service_s)
        return queue_wait_quantile_s(servers, rate, service_s, self.ttft_percentile)


@dataclass(frozen=True)
class Plan:
    """The fewest devices of one type that meet an Slo, and how: `replicas` copies of a
    tensor-parallel layout each running `concurrency` requests at once.

    When nothing meets the Slo, `reason` says why and the other fields describe none;
    when only more than MAX_DEVICES would, `max_requests_per_s` is the largest rate
    MAX_DEVICES of the type serve within the targets, and the other fields describe that
    largest plan within the ceiling."""

    device: Device
    tensor: int
    concurrency: int
    replicas: int
    devices: int
    ttft_s: float
    tpot_s: float
    requests_per_s_per_replica: float
    cost_per_million_output_tokens: float | None
    reason: str = ""  # set when nothing meets the Slo (see above)
    queue_wait_s: float = 0.0  # mean wait for a free slot (Erlang C), inside ttft_s
    queue_wait_p99_s: float = 0.0  # its 99th percentile
    ttft_held_to: str = "mean"  # the wait the TTFT target was held to: mean, or p99 ...
    utilization: float = 0.0  # arrival rate over what the replicas can serve
    max_requests_per_s: float | None = None  # past the ceiling: the most it serves


@dataclass(frozen=True)
class _Layout:
    """A (tensor ways, requests in flight) that meets the TPOT target and, without a queue,
    the TTFT target."""

    tensor: int
    batch: int
    tpot_s: float  # TPOT seen: the decode step and the prefills between steps
    ttft_s: float  # one prefill and one TPOT seen, no wait
    per_replica: float  # requests a second a replica serves: B / S
    service_s: float  # S = O x TPOT seen: how long a request holds its slot


def _plan_of(
    device: Device,
    slo: Slo,
    lay: _Layout,
    replicas: int,
    rate: float,
    o: int,
    reason: str = "",
    max_requests_per_s: float | None = None,
) -> Plan:
    servers, service = replicas * lay.batch, lay.service_s
    wait = queue_wait_s(servers, rate, service)
    n = replicas * lay.tensor
    cost = None
    if device.price is not None:
        cost = n * device.price.per_hour / 3600 / (rate * o) * 1e6
    return Plan(
        device,
        lay.tensor,
        lay.batch,
        replicas,
        n,
        lay.ttft_s + wait,
        lay.tpot_s,
        lay.per_replica,
        cost,
        queue_wait_s=wait,
        queue_wait_p99_s=queue_wait_quantile_s(servers, rate, service, 0.99),
        utilization=rate / (replicas * lay.per_replica),
        ttft_held_to="mean" if slo.ttft_percentile is None else f"p{100 * slo.ttft_percentile:g}",
        reason=reason,
        max_requests_per_s=max_requests_per_s,
    )


def _most_within_ceiling(slo: Slo, lay: _Layout) -> float | None:
    """The largest rate below slo.rate for which the planner finds `lay` within
    MAX_DEVICES: its replicas r = MAX_DEVICES // tensor meet the TTFT target with the wait,
    and the planner's search reaches r (r <= 2 ceil(rate / per replica), so rate >= r / 2
    per replica). The wait grows with the rate, so bisection between r / 2 x per replica
    and the lesser of slo.rate and r x per replica (an endless queue); None when the
    target is missed already at the low end."""
    r = MAX_DEVICES // lay.tensor
    servers, service = r * lay.batch, lay.service_s

    def ok(rate: float) -> bool:
        return lay.ttft_s + slo.wait(servers, service, rate) <= slo.ttft_s

    lo, hi = r / 2 * lay.per_replica, min(slo.rate, r * lay.per_replica)
    if r < 1 or lo >= hi or not ok(lo):
        return None
    while hi - lo > 1e-12 * hi:
        mid = (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _rate_text(rate: float) -> str:
    """A rate rounded down (a rate shown as servable must be): whole requests from 100 a
    second, else three significant digits."""
    if rate >= 100:
        return f"{math.floor(rate):,}"
    scale = 10 ** (2 - math.floor(math.log10(rate)))
    return f"{math.floor(rate * scale) / scale:g}"


def _refused_past_ceiling(device: Device, slo: Slo, layouts: list[_Layout], o: int) -> Plan:
    """The plan for a rate that needs more than MAX_DEVICES: the largest rate MAX_DEVICES
    serve within the SLOs (the best of the layouts, most capacity first), and its plan."""
    most, at = 0.0, None
    for lay in sorted(layouts, key=lambda x: -(MAX_DEVICES // x.tensor) * x.per_replica):
        if (MAX_DEVICES // lay.tensor) * lay.per_replica <= most:
            break  # capacity bounds the rate: no later layout serves more
        rate = _most_within_ceiling(slo, lay)
        if rate is not None and rate > most:
            most, at = rate, lay
    head = f"{slo.rate:,g} requests/s needs more than {MAX_DEVICES:,} {device.key}"
    if at is None:
        return Plan(
            device, 0, 0, 0, 0, math.nan, math.nan, 0.0, None,
            reason=f"{head} (the most devices a plan may use) within the SLOs",
        )  # fmt: skip
    why = (
        f"{head}; the most {MAX_DEVICES:,} {device.key} serve within the SLOs is "
        f"{_rate_text(most)} requests/s (tp {at.tensor}, {at.batch:,} in flight a replica)"
    )
    return _plan_of(device, slo, at, MAX_DEVICES // at.tensor, most, o, why, most)


def plan(
    w: Workload,
    run: RunConfig,
    device: Device,
    request: Request,
    slo: Slo,
    tensor_ways: tuple[int, ...] = TENSOR_WAYS,
) -> Plan:
    """The fewest `device`s that serve slo.rate requests a second within the latency SLOs,
    under continuous batching in steady state (the expected-time model throughout):

      a replica (tensor-parallel over t devices, t in tensor_ways: TENSOR_WAYS, or the
      one asked) keeps B requests in
      flight, B a power of two up to what its KV cache holds (serve's max_concurrency);
      each decode step makes one token for each of them in tpot(B) at the mean context
      P + O / 2; each new request's prompt is prefilled alone, prefill(P), between steps.
      In steady state B / O requests finish a step and as many prefills join, so
        TPOT seen    = tpot(B) + (B / O) x prefill(P)
        TTFT         = prefill(P) + one TPOT seen (the step a new request waits for)
        requests/s   = B / (O x TPOT seen)            per replica
      Requests arrive at random (Poisson) and wait for one of the c = replicas x B slots;
      a slot is held for the O steps of its request, S = O x TPOT seen. The mean wait is an
      M/M/c queue's (queue_wait_s: Erlang C; exponential service makes it an upper bound of
      the M/D/c wait of requests of one length), and it is part of the TTFT:
        TTFT         = wait + prefill(P) + one TPOT seen
      replicas: the fewest, from ceil(rate / requests/s) up to twice that (past it, it is
      not the queue that misses the target), whose TTFT with the wait meets the target (the
      mean wait, or with Slo.ttft_percentile its quantile: P(W > t) = C e^{-(c/S - rate) t});
      the wait only shortens with more servers, so a galloping search finds them (fewest).
      devices = replicas x t, at most MAX_DEVICES. Among the (t, B) that meet both SLOs,
      the fewest devices (then the lowest TPOT) win. TPOT is taken at B in flight although
      a replica below full utilization runs fewer: on the safe side.
      A rate that only more than MAX_DEVICES would serve is refused (reason), with the
      largest rate MAX_DEVICES serve (max_requests_per_s) and that plan."""
    check_decoder(w, run)
    best: Plan | None = None
    why = ""
    layouts: list[_Layout] = []  # all that meet the latency targets without a queue
    capped = False  # a layout would need more than MAX_DEVICES
    p, o = request.prompt, request.output_tokens
    check_lengths(w, p, o)
    for t in tensor_ways:
        layout = replace(run.layout, data=1, tensor=t, pipeline=1)
        try:
            w.check_layout(layout)
        except FieldError:
            continue
        one = replace(run, batch=1, layout=layout)
        prefill = step_time(w, replace(one, phase="prefill", seq=p, logits="last"), device)
        if prefill.expected_s is None:
            why = prefill.reason
            continue
        room = serve(w, one, device, request).max_concurrency
        batch = 1
        while batch <= room:
            token = step_time(
                w, replace(one, batch=batch, phase="decode", seq=None, context=p + o // 2), device
            )
            if token.expected_s is None:
                why = token.reason
                break
            tpot = token.expected_s + batch / o * prefill.expected_s
            ttft = prefill.expected_s + tpot
            if tpot > slo.tpot_s:
                break  # larger batches only take longer a token
            if ttft <= slo.ttft_s:
                lay = _Layout(t, batch, tpot, ttft, batch / (o * tpot), o * tpot)
                layouts.append(lay)
                first = math.ceil(slo.rate / lay.per_replica)
                top = min(2 * first, MAX_DEVICES // t)
                capped = capped or top < 2 * first
                if best is not None and first * t > best.devices:
                    batch *= 2
                    continue  # at least as many devices as the best so far: cannot win

                def meets(replicas: int, lay: _Layout = lay) -> bool:
                    held = slo.wait(replicas * lay.batch, lay.service_s)
                    return lay.ttft_s + held <= slo.ttft_s

                replicas = fewest(first, top, meets)
                if replicas is not None and (
                    best is None or (replicas * t, tpot) < (best.devices, best.tpot_s)
                ):
                    best = _plan_of(device, slo, lay, replicas, slo.rate, o)
            batch *= 2
        if room < 1 and not why:
            why = f"the weights leave no room for a request's KV cache at tp {t}"
    if best is not None:
        return best
    if capped:
        return _refused_past_ceiling(device, slo, layouts, o)
    return Plan(
        device,
        0,
        0,
        0,
        0,
        math.nan,
        math.nan,
        0.0,
        None,
        reason=why or "no layout up to tp 8 meets the TTFT and TPOT targets",
    )
