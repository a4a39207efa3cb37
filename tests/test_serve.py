"""The serving planner (roofline serve), by hand on Llama-2-7B."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from roofline import RunConfig, get_device, get_workload
from roofline.cli import app
from roofline.errors import RooflineError
from roofline.serve import BLOCK_TOKENS, Request, serve
from roofline.step import step_time

W = get_workload("llama-2-7b")
A100 = get_device("a100")


def test_latencies_are_the_prefill_and_decode_steps():
    run = RunConfig(batch=4, attention="flash")
    r = serve(W, run, A100, Request(prompt=512, output_tokens=128))
    prefill = replace(run, phase="prefill", seq=512, logits="last")
    decode = replace(run, phase="decode", context=512 + 64)
    assert r.ttft_s == pytest.approx(step_time(W, prefill, A100).expected_s)
    assert r.tpot_s == pytest.approx(step_time(W, decode, A100).expected_s)
    assert r.ttft_bound_s < r.ttft_s and r.tpot_bound_s < r.tpot_s
    assert r.output_tokens_per_s == pytest.approx(4 / r.tpot_s)


def test_max_concurrency_by_hand():
    # Llama-2-7B fp16 on an 80 GB A100 with a 10 % reserve: 72 GB usable, less 2 x 6.74e9
    # bytes of weights and the working set; each request of 512 + 512 tokens takes 1024
    # tokens (64 blocks of 16) x 524,288 bytes (2 x 32 layers x 4096 x 2 bytes) of KV cache
    r = serve(W, RunConfig(batch=1), A100, Request(prompt=512, output_tokens=512))
    weights = 2 * W.params
    per_request = math.ceil(1024 / BLOCK_TOKENS) * BLOCK_TOKENS * 524_288
    free = 72e9 - weights - float(r.memory.activations)
    assert r.max_concurrency == int(free // per_request)
    assert 100 < r.max_concurrency < 120
    assert r.fits


def test_llama2_70b_on_two_h100_does_not_fit_with_a_runtime_reserve():
    # the planner's question: batch 16, 4k context, 2 x H100: weights 69 GB a device +
    # KV 16 x 4096 x 327,680 B / 2 = 10.7 GB > 72 GB usable; it fits an H200 (141 GB)
    run = RunConfig(batch=16, layout=replace(RunConfig().layout, tensor=2))
    req = Request(prompt=3840, output_tokens=256)
    h100 = serve(get_workload("llama-2-70b"), run, get_device("h100"), req)
    assert not h100.fits
    kv = 16 * 4096 * 327_680 / 2
    assert float(h100.memory.kv_cache) == pytest.approx(kv)
    assert serve(get_workload("llama-2-70b"), run, get_device("h200"), req).fits


def test_bad_requests_and_models():
    with pytest.raises(RooflineError, match="prompt 0"):
        Request(prompt=0, output_tokens=1)
    with pytest.raises(RooflineError, match="reserve 1"):
        Request(prompt=1, output_tokens=1, reserve=1)
    with pytest.raises(RooflineError, match="decoder with a KV cache"):
        serve(get_workload("bert-large"), RunConfig(), A100, Request(128, 1))


def test_serve_cli_json_interface():
    args = ["serve", "-m", "llama-2-7b", "--hw", "a100", "--batch", "8", "--prompt", "256"]
    res = CliRunner().invoke(app, [*args, "--output", "64", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("ttft_s", "tpot_s", "output_tokens_per_s", "max_concurrency", "memory", "fits"):
        assert key in data
    assert data["output_tokens_per_s"] == pytest.approx(8 / data["tpot_s"])
    both = CliRunner().invoke(app, ["serve", "-m", "llama-2-7b", "--hw", "a100,h100", "-f", "json"])
    assert [d["device"] for d in json.loads(both.stdout)] == ["a100", "h100"]
    bad = CliRunner().invoke(app, [*args, "--output", "0"])
    assert bad.exit_code == 2 and "--output 0" in bad.stderr


def test_cost_per_million_output_tokens_by_hand():
    """2 x H100 (tp 2) at the file's $55.04 / 8 an hour: a million output tokens cost
    2 x 6.88 / 3600 x 1e6 / (tokens a second); --price replaces it; no price: null."""
    args = ["serve", "-m", "llama-2-13b", "--hw", "h100,mi300x", "--tp", "2", "--batch", "8"]
    res = CliRunner().invoke(app, [*args, "-f", "json"])
    assert res.exit_code == 0, res.output
    h100, mi300x = json.loads(res.stdout)
    want = 2 * (55.04 / 8) / 3600 * 1e6 / h100["output_tokens_per_s"]
    assert h100["cost_per_million_output_tokens"] == pytest.approx(want, rel=1e-9)
    assert h100["currency"] == "USD" and h100["output_tokens_per_s"] == pytest.approx(
        8 / h100["tpot_s"]
    )
    assert mi300x["cost_per_million_output_tokens"] is None  # no price in its file
    res = CliRunner().invoke(app, [*args, "--price", "mi300x=2", "-f", "json"])
    _, mi300x = json.loads(res.stdout)
    assert mi300x["cost_per_million_output_tokens"] == pytest.approx(
        2 * 2 / 3600 * 1e6 / mi300x["output_tokens_per_s"], rel=1e-9
    )


def _erlang_c_by_sum(c: int, a: float) -> float:
    """Erlang's C formula as textbooks write it (Kleinrock, Queueing Systems I, eq. 3.40):
    C = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a))),
    in logarithms so that c in the hundreds does not overflow."""
    term = [math.exp(k * math.log(a) - math.lgamma(k + 1)) for k in range(c)]
    last = math.exp(c * math.log(a) - math.lgamma(c + 1)) * c / (c - a)
    return last / (sum(term) + last)


def _wait_by_hand(c: int, rate: float, service: float) -> float:
    a = rate * service
    return math.inf if a >= c else _erlang_c_by_sum(c, a) / (c / service - rate)


def test_queue_wait_textbook_values():
    from roofline.serve import erlang_c, queue_wait_quantile_s, queue_wait_s

    # M/M/1 at rate 0.5, service 1 s: Wq = rho / (mu - lambda) = 0.5 / 0.5 = 1 s
    assert queue_wait_s(1, 0.5, 1.0) == pytest.approx(1.0)
    # M/M/2, rate 1, service 1 s (a = 1): C = (1/2)(2/1) / (1 + 1 + 1) = 1/3, Wq = C / (2 - 1)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert queue_wait_s(2, 1.0, 1.0) == pytest.approx(1 / 3)
    # the recursion agrees with the sum formula for many servers, and saturation is inf
    assert erlang_c(400, 380.0) == pytest.approx(_erlang_c_by_sum(400, 380.0), rel=1e-9)
    assert queue_wait_s(8, 8.0, 1.0) == math.inf and erlang_c(8, 9.0) == 1.0
    # M/M/1, rate 0.5, service 1 s: P(W > t) = rho e^{-(mu - lambda) t} = 0.5 e^{-t / 2}, so
    # the 99th percentile is 2 ln(0.5 / 0.01) = 2 ln 50 = 7.824 s; the median is 0 (half wait)
    assert queue_wait_quantile_s(1, 0.5, 1.0, 0.99) == pytest.approx(2 * math.log(50))
    assert queue_wait_quantile_s(1, 0.5, 1.0, 0.5) == 0.0


def test_slo_plan_by_hand_and_no_smaller_layout_meets_it():
    """Llama-2-13B, 5 requests/s of 1000 + 200 tokens, TTFT <= 1 s, TPOT <= 40 ms on H100.
    The plan's figures follow the steady-state formulas from the step times (recomputed
    here), the queueing wait from Erlang's C formula written out above, it meets both
    targets, and an exhaustive search over tp 1, 2, 4, 8, every concurrency up to what the
    cache holds and every replica count finds no layout with fewer devices."""
    from roofline.serve import Slo, plan

    w, h100 = get_workload("llama-2-13b"), get_device("h100")
    req, slo = Request(prompt=1000, output_tokens=200), Slo(5.0, 1.0, 0.040)
    p = plan(w, RunConfig(), h100, req, slo)
    assert not p.reason
    one = RunConfig(layout=replace(RunConfig().layout, tensor=p.tensor))
    prefill = step_time(w, replace(one, phase="prefill", seq=1000, logits="last"), h100)
    token = step_time(w, replace(one, batch=p.concurrency, phase="decode", context=1100), h100)
    tpot = token.expected_s + p.concurrency / 200 * prefill.expected_s
    wait = _wait_by_hand(p.replicas * p.concurrency, 5.0, 200 * tpot)
    assert p.tpot_s == pytest.approx(tpot)
    assert p.queue_wait_s == pytest.approx(wait, rel=1e-9)
    assert p.ttft_s == pytest.approx(wait + prefill.expected_s + tpot)
    assert p.tpot_s <= 0.040 and p.ttft_s <= 1.0
    per_replica = p.concurrency / (200 * tpot)
    assert p.replicas >= math.ceil(5.0 / per_replica) and p.devices == p.replicas * p.tensor
    assert p.utilization == pytest.approx(5.0 / (p.replicas * per_replica))
    assert p.cost_per_million_output_tokens == pytest.approx(
        p.devices * (55.04 / 8) / 3600 / (5.0 * 200) * 1e6
    )
    for t in (1, 2, 4, 8):
        run = RunConfig(layout=replace(RunConfig().layout, tensor=t))
        room = serve(w, run, h100, req).max_concurrency
        pre = step_time(w, replace(run, phase="prefill", seq=1000, logits="last"), h100)
        for b in range(1, room + 1):
            dec = step_time(w, replace(run, batch=b, phase="decode", context=1100), h100)
            seen = dec.expected_s + b / 200 * pre.expected_s
            if seen > 0.040:
                continue
            for r in range(1, p.devices // t + 1):  # every count of replicas below the plan's
                if r * t < p.devices:
                    assert pre.expected_s + seen + _wait_by_hand(r * b, 5.0, 200 * seen) > 1.0


def test_slo_plan_on_the_99th_percentile_of_the_wait_by_hand():
    """--ttft-percentile 0.99: the TTFT target holds for the wait's 99th percentile,
    t99 = ln(C / 0.01) / (c / S - rate) (C: Erlang C by the sum formula above); the plan
    meets it, one replica fewer of the same layout would not, and it needs at least the
    devices of the plan on the mean."""
    from roofline.serve import Slo, plan

    w, h100 = get_workload("llama-2-70b"), get_device("h100")
    req = Request(prompt=2000, output_tokens=300)
    mean = plan(w, RunConfig(), h100, req, Slo(10.0, 2.0, 0.05))
    p99 = plan(w, RunConfig(), h100, req, Slo(10.0, 2.0, 0.05, ttft_percentile=0.99))
    assert p99.ttft_held_to == "p99" and mean.ttft_held_to == "mean"
    assert p99.devices >= mean.devices

    def t99(replicas: int) -> float:
        c, service = replicas * p99.concurrency, 300 * p99.tpot_s
        if 10.0 * service >= c:
            return math.inf
        erlang = _erlang_c_by_sum(c, 10.0 * service)
        return max(0.0, math.log(erlang / 0.01)) / (c / service - 10.0)

    base = p99.ttft_s - p99.queue_wait_s  # prefill + one TPOT seen
    assert base + t99(p99.replicas) <= 2.0
    assert p99.queue_wait_p99_s == pytest.approx(t99(p99.replicas), rel=1e-9, abs=1e-12)
    if p99.replicas - 1 >= math.ceil(10.0 / p99.requests_per_s_per_replica):
        assert base + t99(p99.replicas - 1) > 2.0
    res = CliRunner().invoke(
        app, ["serve", "-m", "llama-2-7b", "--hw", "a100", "--rate", "2", "--ttft-percentile", "1"]
    )
    assert res.exit_code == 2 and "--ttft-percentile 1" in res.stderr


def test_slo_plan_cli_json_and_impossible_targets():
    args = ["serve", "-m", "llama-2-7b", "--hw", "a100,v100", "--rate", "2", "--prompt", "512"]
    res = CliRunner().invoke(app, [*args, "--tpot", "0.0001", "-f", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"not strict: {c}"))
    assert [r["device"] for r in rows] == ["a100", "v100"]
    for r in rows:  # 0.1 ms a token is beyond any layout: null figures with the reason
        assert r["devices"] is None and r["ttft_s"] is None and r["reason"]
    res = CliRunner().invoke(app, [*args, "--rate", "0"])
    assert res.exit_code == 2 and "rate 0" in res.stderr
    # a model without a KV cache is refused as serve refuses it, in one line
    res = CliRunner().invoke(app, ["serve", "-m", "resnet-50", "--hw", "h100", "--rate", "2"])
    assert res.exit_code == 2 and "serve models a decoder with a KV cache" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- storage formats
def test_int4_weights_and_fp8_kv_cache_by_hand():
    """Weight-only int4 and an fp8 KV cache, Llama-2-7B decode at batch 8 over 1024 cached
    tokens: the weights take 6,738,415,616 x 0.5 bytes (two int4 a byte; the published
    parameter count), the cache 8 x 2 (K, V) x 32 layers x 4096 x 1025 tokens x 1 byte;
    the GEMMs still compute in fp16, so the FLOPs do not change."""
    from roofline.analysis import analyze
    from roofline.memory import memory_breakdown

    base = RunConfig(batch=8, phase="decode", context=1024)
    quant = replace(base, weights="int4", kv_dtype="fp8")
    m = memory_breakdown(W, quant)
    assert float(m.params) == pytest.approx(6_738_415_616 * 0.5)
    assert float(m.kv_cache) == pytest.approx(8 * 2 * 32 * 4096 * 1025 * 1)
    fp16, q = analyze(W, A100, base), analyze(W, A100, quant)
    assert q.total_flops == fp16.total_flops
    # bytes saved: 1.5 bytes a weight read and 1 byte a cached element; a decode step reads
    # every weight but the input embedding table's 32000 x 4096 (it gathers 8 rows of it),
    # and attention reads the 1025 keys and values from the cache (the new token's written
    # there first, as paged-attention kernels do)
    read = 6_738_415_616 - 32000 * 4096 + 8 * 4096
    saved = read * 1.5 + 8 * 2 * 32 * 4096 * 1025 * 1
    assert fp16.bytes.sum() - q.bytes.sum() == pytest.approx(saved, rel=1e-12)
    assert q.time_s.sum() < 0.5 * fp16.time_s.sum()  # decode is memory-bound


def test_an_int4_model_holds_more_requests():
    req = Request(prompt=512, output_tokens=512)
    fp16 = serve(W, RunConfig(batch=1), A100, req)
    fp8_kv = serve(W, RunConfig(batch=1, weights="int4", kv_dtype="fp8"), A100, req)
    # half the bytes a cached token and 10 GB more room: more than twice the requests
    assert fp8_kv.max_concurrency > 2 * fp16.max_concurrency


def test_storage_formats_refused_where_they_do_not_apply():
    with pytest.raises(RooflineError, match="weights int4: weight-only quantization is for"):
        RunConfig(phase="training", weights="int4")
    with pytest.raises(RooflineError, match="kv_dtype int4: unknown storage format"):
        RunConfig(kv_dtype="int4")
    result = CliRunner().invoke(
        app, ["serve", "-m", "llama-2-7b", "--hw", "a100", "--weights", "int2"]
    )
    assert result.exit_code == 2
    assert "--weights int2: unknown storage format; allowed: fp32" in result.output


def test_serve_json_names_its_storage_formats():
    args = ["serve", "-m", "llama-2-7b", "--hw", "h100", "--weights", "int8"]
    result = CliRunner().invoke(app, [*args, "--kv-dtype", "fp8", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["dtype"], data["weights"], data["kv_dtype"]) == ("fp16", "int8", "fp8")
    assert data["memory"]["params"] == pytest.approx(W.params * 1.0)


def test_readme_llama_2_70b_int4_decode_by_hand():
    """README's example: Llama-2-70B decode, batch 8 over 4096 cached tokens on an H100, int4
    weights (68,976,648,192 parameters x 0.5 bytes) and an fp8 cache (80 layers x 8 KV heads
    x 128 x 2 (K, V) x 4097 tokens x 8 samples x 1 byte); the step reads 41.5 GB, memory-bound
    at the H100 SXM's 3.35 TB/s: 12.4 ms."""
    from roofline.analysis import analyze
    from roofline.memory import memory_breakdown

    w70, h100 = get_workload("llama-2-70b"), get_device("h100")
    run = RunConfig(batch=8, phase="decode", context=4096, weights="int4", kv_dtype="fp8")
    m = memory_breakdown(w70, run)
    assert float(m.params) == pytest.approx(68_976_648_192 * 0.5)
    assert float(m.kv_cache) == pytest.approx(80 * 8 * 128 * 2 * 4097 * 8 * 1)
    r = analyze(w70, h100, run)
    assert r.bytes.sum() == pytest.approx(41.5e9, rel=2e-3)
    assert r.time_s.sum() == pytest.approx(r.bytes.sum() / 3.35e12, rel=1e-3)
