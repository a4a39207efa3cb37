"""Serving an LLM: latency, throughput and how many requests the memory holds.

For a batch of B requests of P prompt tokens and O output tokens on a layout of one device
type (RunConfig: dtype, attention kernel, tensor/pipeline layout):

  ttft_s             time to first token: the prefill of the B prompts together, logits of
                     the last position only (step.step_time, expected; the bound beside it)
  tpot_s             time per output token: one decode step of the batch at the mean context,
                     P + O / 2 cached tokens
  output_tokens_per_s  B / tpot per replica; per device: / (tensor x pipeline)
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import FieldError
from .hardware import Device
from .memory import MemoryBreakdown, kv_cache_bytes, memory_breakdown
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


def _check_decoder(w: Workload, run: RunConfig) -> None:
    if w.arch.kv_cache_elements(replace(run, phase="decode", context=1, seq=None)) <= 0:
        raise FieldError("model", w.key, "serve models a decoder with a KV cache")


def serve(w: Workload, run: RunConfig, device: Device, request: Request) -> ServeResult:
    """`run` gives the batch, dtype, attention kernel and layout; its phase is set here."""
    _check_decoder(w, run)
    p, o = request.prompt, request.output_tokens
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
    rate = run.local_batch / tpot if tpot else None
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
        for name, value, top in (
            ("rate", self.rate, 1e5),  # requests a second: far past any one service
            ("ttft", self.ttft_s, 1e9),
            ("tpot", self.tpot_s, 1e9),
        ):
            ok = isinstance(value, int | float) and 0 < value <= top  # also nan and inf
            if not ok:
                raise FieldError(name, value, f"must be > 0 and at most {top:g}")
        q = self.ttft_percentile
        if q is not None and not (isinstance(q, int | float) and 0.5 <= q <= 0.999):
            raise FieldError("ttft_percentile", q, "a quantile from 0.5 to 0.999")

    def wait(self, servers: int, service_s: float) -> float:
        """The wait the TTFT target is held to: the mean, or the chosen quantile."""
        if self.ttft_percentile is None:
            return queue_wait_s(servers, self.rate, service_s)
        return queue_wait_quantile_s(servers, self.rate, service_s, self.ttft_percentile)


@dataclass(frozen=True)
class Plan:
    """The fewest devices of one type that meet an Slo, and how: `replicas` copies of a
    tensor-parallel layout each running `concurrency` requests at once."""

    device: Device
    tensor: int
    concurrency: int
    replicas: int
    devices: int
    ttft_s: float
    tpot_s: float
    requests_per_s_per_replica: float
    cost_per_million_output_tokens: float | None
    reason: str = ""  # set when nothing meets the Slo (the other fields then describe none)
    queue_wait_s: float = 0.0  # mean wait for a free slot (Erlang C), inside ttft_s
    queue_wait_p99_s: float = 0.0  # its 99th percentile
    ttft_held_to: str = "mean"  # the wait the TTFT target was held to: mean, or p99 ...
    utilization: float = 0.0  # arrival rate over what the replicas can serve


def erlang_c(servers: int, load: float) -> float:
    """The probability that an arrival waits in an M/M/c queue with c = `servers` and an
    offered load a = rate x service time (Erlang's C formula), computed through the Erlang B
    recursion B(k) = a B(k-1) / (k + a B(k-1)), which stays finite for thousands of servers:
    C = B(c) / (1 - (a / c) (1 - B(c))). 1 when a >= c (the queue grows without end)."""
    if load >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b / (1 - load / servers * (1 - b))


def queue_wait_s(servers: int, rate: float, service_s: float) -> float:
    """Mean wait before service in an M/M/c queue: C(c, a) / (c / S - rate); inf when the
    servers cannot keep up."""
    load = rate * service_s
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) / (servers / service_s - rate)


def queue_wait_quantile_s(servers: int, rate: float, service_s: float, q: float) -> float:
    """The q-quantile of the wait in an M/M/c queue: P(W > t) = C e^{-(c/S - rate) t}, so
    t_q = ln(C / (1 - q)) / (c/S - rate), and 0 when fewer than 1 - q of arrivals wait."""
    load = rate * service_s
    if load >= servers:
        return math.inf
    c = erlang_c(servers, load)
    return max(0.0, math.log(c / (1 - q))) / (servers / service_s - rate) if c > 0 else 0.0


def plan(w: Workload, run: RunConfig, device: Device, request: Request, slo: Slo) -> Plan:
    """The fewest `device`s that serve slo.rate requests a second within the latency SLOs,
    under continuous batching in steady state (the expected-time model throughout):

      a replica (tensor-parallel over t devices, t in TENSOR_WAYS) keeps B requests in
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
      replicas: the fewest, from ceil(rate / requests/s) up, whose TTFT with the wait meets
      the target (the mean wait, or with Slo.ttft_percentile its quantile: P(W > t) =
      C e^{-(c/S - rate) t}); devices = replicas x t. Among the (t, B) that meet both SLOs,
      the fewest devices (then the lowest TPOT) win. TPOT is taken at B in flight although a replica
      below full utilization runs fewer: on the safe side."""
    _check_decoder(w, run)
    best: Plan | None = None
    why = ""
    p, o = request.prompt, request.output_tokens
    for t in TENSOR_WAYS:
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
                per_replica = batch / (o * tpot)
                replicas = math.ceil(slo.rate / per_replica)
                held = slo.wait(replicas * batch, o * tpot)
                # more replicas shorten the wait; past twice the first count it is not
                # the queue that misses the target
                while ttft + held > slo.ttft_s and replicas < 2 * math.ceil(slo.rate / per_replica):
                    replicas += 1
                    held = slo.wait(replicas * batch, o * tpot)
                wait = queue_wait_s(replicas * batch, slo.rate, o * tpot)
                n = replicas * t
                if ttft + held <= slo.ttft_s and (
                    best is None or (n, tpot) < (best.devices, best.tpot_s)
                ):
                    cost = None
                    if device.price is not None:
                        cost = n * device.price.per_hour / 3600 / (slo.rate * o) * 1e6
                    best = Plan(
                        device,
                        t,
                        batch,
                        replicas,
                        n,
                        ttft + wait,
                        tpot,
                        per_replica,
                        cost,
                        queue_wait_s=wait,
                        queue_wait_p99_s=queue_wait_quantile_s(
                            replicas * batch, slo.rate, o * tpot, 0.99
                        ),
                        utilization=slo.rate / (replicas * per_replica),
                        ttft_held_to="mean"
                        if slo.ttft_percentile is None
                        else f"p{100 * slo.ttft_percentile:g}",
                    )
            batch *= 2
        if room < 1 and not why:
            why = f"the weights leave no room for a request's KV cache at tp {t}"
    if best is not None:
        return best
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
