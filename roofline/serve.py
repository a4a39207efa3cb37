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


def serve(w: Workload, run: RunConfig, device: Device, request: Request) -> ServeResult:
    """`run` gives the batch, dtype, attention kernel and layout; its phase is set here."""
    if w.arch.kv_cache_elements(replace(run, phase="decode", context=1, seq=None)) <= 0:
        raise FieldError("model", w.key, "serve models a decoder with a KV cache")
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
