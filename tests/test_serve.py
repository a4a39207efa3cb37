"""The serving planner (roofline serve), by hand on Llama-2-7B."""

from __future__ import annotations

import json
import math
import re
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
    # a static batch of 4: 4 x 128 tokens over the whole request, prefill included
    assert r.output_tokens_per_s == pytest.approx(4 * 128 / (r.ttft_s + 127 * r.tpot_s))


def test_max_concurrency_by_hand():
    # Llama-2-7B fp16 on an 80 GB A100 (80 x 2^30 bytes: a memory size in GB is binary,
    # JEDEC) with a 10 % reserve: 77.3e9 bytes usable, less 2 x 6.74e9
    # bytes of weights and the working set; each request of 512 + 512 tokens takes 1024
    # tokens (64 blocks of 16) x 524,288 bytes (2 x 32 layers x 4096 x 2 bytes) of KV cache
    r = serve(W, RunConfig(batch=1), A100, Request(prompt=512, output_tokens=512))
    weights = 2 * W.params
    per_request = math.ceil(1024 / BLOCK_TOKENS) * BLOCK_TOKENS * 524_288
    free = 0.9 * 80 * 2**30 - weights - float(r.memory.activations)
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
    args = ["serve", "-m", "llama-2-7b", "--hw", "a100", "--batch", "8", "--prompt-tokens", "256"]
    res = CliRunner().invoke(app, [*args, "--output-tokens", "64", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("ttft_s", "tpot_s", "output_tokens_per_s", "max_concurrency", "memory", "fits"):
        assert key in data
    whole = data["ttft_s"] + 63 * data["tpot_s"]  # the prefill and 63 more steps
    assert data["output_tokens_per_s"] == pytest.approx(8 * 64 / whole)
    both = CliRunner().invoke(app, ["serve", "-m", "llama-2-7b", "--hw", "a100,h100", "-f", "json"])
    assert [d["device"] for d in json.loads(both.stdout)] == ["a100", "h100"]
    bad = CliRunner().invoke(app, [*args, "--output-tokens", "0"])
    assert bad.exit_code == 2 and "--output-tokens 0" in bad.stderr


def test_cost_per_million_output_tokens_by_hand():
    """2 x H100 (tp 2) at the file's $55.04 / 8 an hour: a million output tokens cost
    2 x 6.88 / 3600 x 1e6 / (tokens a second); --price replaces it; no price: null."""
    args = ["serve", "-m", "llama-2-13b", "--hw", "h100,mi325x", "--tp", "2", "--batch", "8"]
    res = CliRunner().invoke(app, [*args, "-f", "json"])
    assert res.exit_code == 0, res.output
    h100, mi325x = json.loads(res.stdout)
    want = 2 * (55.04 / 8) / 3600 * 1e6 / h100["output_tokens_per_s"]
    assert h100["cost_per_million_output_tokens"] == pytest.approx(want, rel=1e-9)
    whole = h100["ttft_s"] + 255 * h100["tpot_s"]  # 256 output tokens, the default
    assert h100["currency"] == "USD" and h100["output_tokens_per_s"] == pytest.approx(
        8 * 256 / whole
    )
    assert mi325x["cost_per_million_output_tokens"] is None  # no price in its file
    res = CliRunner().invoke(app, [*args, "--price", "mi325x=2", "-f", "json"])
    _, mi325x = json.loads(res.stdout)
    assert mi325x["cost_per_million_output_tokens"] == pytest.approx(
        2 * 2 / 3600 * 1e6 / mi325x["output_tokens_per_s"], rel=1e-9
    )


def _erlang_c_by_sum(c: int, a: float) -> float:
    """Erlang's C formula as textbooks write it (Kleinrock, Queueing Systems I, eq. 3.40):
    C = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a))),
    in logarithms and each term divided by the largest, so that thousands of servers do
    not overflow."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    last = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    top = max(*logs, last)
    return math.exp(last - top) / (
        math.fsum(math.exp(x - top) for x in logs) + math.exp(last - top)
    )


def _wait_by_hand(c: int, rate: float, service: float) -> float:
    a = rate * service
    return math.inf if a >= c else _erlang_c_by_sum(c, a) / (c / service - rate)


def test_queue_wait_textbook_values():
    from roofline.queueing import erlang_c, queue_wait_quantile_s, queue_wait_s

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
    args = [
        "serve",
        "-m",
        "llama-2-7b",
        "--hw",
        "a100,v100",
        "--rate",
        "2",
        "--prompt-tokens",
        "512",
    ]
    res = CliRunner().invoke(app, [*args, "--tpot", "0.0001", "-f", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"not strict: {c}"))
    assert [r["device"] for r in rows] == ["a100", "v100"]
    for r in rows:  # 0.1 ms a token is beyond any layout: null figures with the reason
        assert r["devices"] is None and r["ttft_p99_s"] is None and r["reason"]
    res = CliRunner().invoke(app, [*args, "--rate", "0"])
    assert res.exit_code == 2 and "rate 0" in res.stderr
    # a model without a KV cache is refused as serve refuses it, in one line
    res = CliRunner().invoke(app, ["serve", "-m", "resnet-50", "--hw", "h100", "--rate", "2"])
    assert res.exit_code == 2 and "serve models a decoder with a KV cache" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- planning at any rate
def _erlang_b_by_recursion(c: int, a: float) -> float:
    """The planner's first Erlang B, kept here as the reference: its recursion, one step a
    server (exact, but linear in c)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def _erlang_c_by_recursion(c: int, a: float) -> float:
    if a >= c:
        return 1.0
    b = _erlang_b_by_recursion(c, a)
    return b / (1 - a / c * (1 - b))


@pytest.mark.parametrize("c", [1001, 4000, 20_000, 100_000])
@pytest.mark.parametrize("rho", [0.6, 0.9, 0.99, 0.999, "one server short"])
def test_erlang_c_for_many_servers_agrees_with_the_recursion(c, rho):
    """Past RECURSION_SERVERS Erlang B is a Poisson ratio summed in a bounded number of
    terms; it agrees with the recursion to 1e-9 relative wherever the recursion's value is
    a normal double (below 1e-300 both are zero to any wait that matters)."""
    from roofline.queueing import RECURSION_SERVERS, erlang_c

    assert c > RECURSION_SERVERS
    a = c - 1.0 if rho == "one server short" else rho * c
    assert erlang_c(c, a) == pytest.approx(_erlang_c_by_recursion(c, a), rel=1e-9, abs=1e-300)


def test_erlang_c_fast_path_textbook_values(monkeypatch):
    """The Poisson-ratio form alone (the recursion switched off) on textbook queues:
    M/M/1 at rate 0.5, service 1 s: C = rho = 0.5, Wq = rho / (mu - lambda) = 1 s;
    M/M/2 at a = 1: C = 1/3 (Kleinrock eq. 3.40); M/M/3 at a = 2: B = (4/3) / (19/3) = 4/19,
    C = B / (1 - (2/3)(1 - B)) = 4/9; and the sum formula at 2,000 servers."""
    from roofline import queueing as sv

    monkeypatch.setattr(sv, "RECURSION_SERVERS", 0)
    assert sv.erlang_c(1, 0.5) == pytest.approx(0.5, rel=1e-12)
    assert sv.queue_wait_s(1, 0.5, 1.0) == pytest.approx(0.5 / (1.0 - 0.5), rel=1e-12)
    assert sv.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    assert sv.erlang_b(3, 2.0) == pytest.approx(4 / 19, rel=1e-12)
    assert sv.erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)
    assert sv.erlang_c(2000, 1950.0) == pytest.approx(_erlang_c_by_sum(2000, 1950.0), rel=1e-9)
    assert sv.erlang_c(8, 9.0) == 1.0 and sv.erlang_b(5, 7.0) == pytest.approx(
        _erlang_b_by_recursion(5, 7.0)
    )  # a loss system past its load: B by the recursion


def test_fewest_is_a_linear_scan():
    """The galloping search returns what a scan from lo up returns, for every threshold."""
    from roofline.queueing import fewest

    for lo, hi in ((1, 1), (1, 2), (5, 40), (100, 1000)):
        for need in range(lo - 2, hi + 3):
            calls: list[int] = []

            def ok(n: int, need: int = need, calls: list[int] = calls) -> bool:
                calls.append(n)
                return n >= need

            scan = next((n for n in range(lo, hi + 1) if n >= need), None)
            assert fewest(lo, hi, ok) == scan
            assert len(calls) <= 2 * math.log2(hi - lo + 2) + 2
    assert fewest(5, 4, lambda n: True) is None


def _quantile_by_hand(c: int, rate: float, service: float, q: float) -> float:
    if rate * service >= c:
        return math.inf
    erlang = _erlang_c_by_sum(c, rate * service)
    return max(0.0, math.log(erlang / (1 - q))) / (c / service - rate)


@pytest.mark.parametrize(
    ("model", "hw", "prompt", "output", "rate", "ttft", "q"),
    [
        ("llama-2-7b", "a100", 512, 256, 300.0, 2.0, None),
        ("llama-2-13b", "h100", 1000, 200, 200.0, 1.0, 0.99),
        ("llama-2-7b", "l40s", 50, 4000, 20.0, 0.4, 0.999),  # 22 replicas past the first
        ("llama-2-7b", "a10", 50, 2000, 20.0, 0.5, 0.999),
    ],
)
def test_planner_replicas_are_a_linear_scan_by_hand(model, hw, prompt, output, rate, ttft, q):
    """For the plan's layout, a scan from ceil(rate / requests a replica) up, one replica at
    a time, with the wait from Erlang's sum formula, stops at the plan's replicas (the
    planner's galloping search makes about 2 log2 of the steps)."""
    from roofline.serve import Slo, plan

    w, dev = get_workload(model), get_device(hw)
    p = plan(w, RunConfig(), dev, Request(prompt, output), Slo(rate, ttft, 0.05, q))
    assert not p.reason
    one = RunConfig(layout=replace(RunConfig().layout, tensor=p.tensor))
    pre = step_time(w, replace(one, phase="prefill", seq=prompt, logits="last"), dev).expected_s
    dec = replace(one, batch=p.concurrency, phase="decode", context=prompt + output // 2)
    seen = step_time(w, dec, dev).expected_s + p.concurrency / output * pre
    service, first = output * seen, math.ceil(rate / (p.concurrency / (output * seen)))
    assert p.tpot_s == pytest.approx(seen, rel=1e-12)

    def wait(r: int) -> float:
        c = r * p.concurrency
        return (
            _wait_by_hand(c, rate, service) if q is None else _quantile_by_hand(c, rate, service, q)
        )

    scan = next(r for r in range(first, 2 * first + 1) if pre + seen + wait(r) <= ttft)
    assert p.replicas == scan and p.replicas * p.concurrency > 1000  # the new Erlang path


def test_a_rate_past_the_ceiling_is_refused_with_the_most_it_serves(monkeypatch):
    """With a ceiling of 16 A100s, 300 requests/s of 512 + 256 tokens (50 A100s unbounded)
    is refused; the reason gives the most 16 serve. By hand, from the plan's figures and
    the step times: that rate is below replicas x requests a replica, the TTFT with the
    wait (Erlang's sum formula) meets 2 s at it, and at 1e-6 more no layout's 16 // tp
    replicas meet it. The planner takes the rate shown (rounded down) on <= 16 devices."""
    from roofline import serve as sv
    from roofline.report.serve import plan_dict

    monkeypatch.setattr(sv, "MAX_DEVICES", 16)
    w, req, slo = W, Request(512, 256), sv.Slo(300.0, 2.0, 0.05)
    p = sv.plan(w, RunConfig(), A100, req, slo)
    most = p.max_requests_per_s
    assert most is not None and 0 < most < 300
    shown = re.search(r"serve within the SLOs is ([\d,.]+) requests/s", p.reason)[1]
    assert p.reason == (
        "300 requests/s needs more than 16 a100; the most 16 a100 serve within the SLOs is "
        f"{shown} requests/s (tp {p.tensor}, {p.concurrency} in flight a replica)"
    )
    shown_rate = float(shown.replace(",", ""))  # rounded down, to three figures below 100
    assert most * (1 - 1e-2) < shown_rate <= most
    assert p.replicas == 16 // p.tensor and p.devices == p.replicas * p.tensor <= 16

    def ttft_by_hand(t: int, batch: int, rate: float) -> tuple[float, float]:
        one = RunConfig(layout=replace(RunConfig().layout, tensor=t))
        pre = step_time(w, replace(one, phase="prefill", seq=512, logits="last"), A100)
        dec = replace(one, batch=batch, phase="decode", context=512 + 128)
        seen = step_time(w, dec, A100).expected_s + batch / 256 * pre.expected_s
        wait = _wait_by_hand((16 // t) * batch, rate, 256 * seen)
        return pre.expected_s + seen + wait, seen

    ttft, seen = ttft_by_hand(p.tensor, p.concurrency, most)
    per_replica = p.concurrency / (256 * seen)
    assert p.requests_per_s_per_replica == pytest.approx(per_replica, rel=1e-12)
    assert p.replicas * per_replica / 2 <= most < p.replicas * per_replica
    assert ttft <= 2.0 and ttft == pytest.approx(p.ttft_s, rel=1e-9)
    for t in (1, 2, 4, 8):
        room = serve(w, RunConfig(layout=replace(RunConfig().layout, tensor=t)), A100, req)
        batch = 1
        while batch <= room.max_concurrency:
            late, seen = ttft_by_hand(t, batch, most * (1 + 1e-6))
            if seen > 0.05:
                break
            assert late > 2.0, (t, batch)
            batch *= 2
    at = sv.plan(w, RunConfig(), A100, req, sv.Slo(shown_rate, 2.0, 0.05))
    assert not at.reason and at.devices <= 16
    assert sv.plan(w, RunConfig(), A100, req, sv.Slo(most * 1.001, 2.0, 0.05)).reason
    row = plan_dict(p)  # figures null as for any refusal, the most it serves given
    assert row["devices"] is None and row["cost_per_million_output_tokens"] is None
    assert row["max_requests_per_s"] == most and row["reason"] == p.reason


def test_the_largest_rate_100000_a100_serve_by_hand():
    """At the real ceiling (100,000 devices), 100,000 requests/s of 50 + 4000 tokens is past
    what A100s serve for Llama-2-7B: refused with the most they serve, which is
    replicas x requests a replica from the plan's figures less what the queue costs (with
    millions of slots, little); the planner takes that rate and no more."""
    from roofline.serve import MAX_DEVICES, Slo, plan

    req = Request(50, 4000)
    p = plan(W, RunConfig(), A100, req, Slo(1e5, 2.0, 0.05))
    most = p.max_requests_per_s
    assert MAX_DEVICES == 100_000 and p.devices == 100_000 and most is not None
    assert p.reason.startswith("100,000 requests/s needs more than 100,000 a100; the most")
    capacity = p.replicas * p.requests_per_s_per_replica
    assert 0.99 * capacity < most < capacity
    assert p.utilization == pytest.approx(most / capacity, rel=1e-12)
    ok = plan(W, RunConfig(), A100, req, Slo(math.floor(most), 2.0, 0.05))
    assert not ok.reason and ok.devices <= 100_000
    assert plan(W, RunConfig(), A100, req, Slo(most * 1.0001, 2.0, 0.05)).reason


def test_serve_rate_100000_finishes_and_plans_each_type_apart():
    """issue 25: `serve --rate 100000 --prompt-tokens 50 --output-tokens 4000` answers (it
    once ran for minutes: the planner added replicas one at a time). A type past the
    ceiling is a row with the reason; it does not stop the next type: at 30,000 requests/s H100s are
    planned (within 100,000) where A100s are refused. Speed: benchmarks/bench_cli.py."""
    args = [
        "serve",
        "-m",
        "llama-2-7b",
        "--rate",
        "100000",
        "--prompt-tokens",
        "50",
        "--output-tokens",
        "4000",
    ]
    res = CliRunner().invoke(app, [*args, "--hw", "a100", "-f", "json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["devices"] is None and "needs more than 100,000 a100" in row["reason"]
    assert 0 < row["max_requests_per_s"] < 1e5
    res = CliRunner().invoke(app, [*args, "--hw", "a100,h100", "--rate", "30000", "-f", "json"])
    assert res.exit_code == 0, res.output
    a100, h100 = json.loads(res.stdout)
    assert "needs more than 100,000 a100" in a100["reason"] and a100["devices"] is None
    assert h100["reason"] is None and h100["devices"] <= 100_000
    assert h100["max_requests_per_s"] is None


# ---------------------------------------------------------------- storage formats
def test_int4_weights_and_fp8_kv_cache_by_hand():
    """Weight-only int4 and an fp8 KV cache, Llama-2-7B decode at batch 8 over 1024 cached
    tokens: the weights take 6,738,415,616 x (0.5 + 2.5 / 128) bytes (two int4 a byte, and
    per group of 128 an fp16 scale and a 4-bit zero point, as GPTQ and AWQ store them; the
    published parameter count), the cache 8 x 2 (K, V) x 32 layers x 4096 x 1025 tokens x 1
    byte; the GEMMs still compute in fp16, so the FLOPs do not change."""
    from roofline.analysis import analyze
    from roofline.memory import memory_breakdown

    base = RunConfig(batch=8, phase="decode", context=1024)
    quant = replace(base, weights="int4", kv_dtype="fp8")
    m = memory_breakdown(W, quant)
    int4 = 0.5 + 2.5 / 128  # 0.51953125 bytes a weight
    assert float(m.params) == pytest.approx(6_738_415_616 * int4)
    assert float(m.kv_cache) == pytest.approx(8 * 2 * 32 * 4096 * 1025 * 1)
    fp16, q = analyze(W, A100, base), analyze(W, A100, quant)
    assert q.total_flops == fp16.total_flops
    # bytes saved: 2 - int4 bytes a weight read and 1 byte a cached element; a decode step reads
    # every weight but the input embedding table's 32000 x 4096 (it gathers 8 rows of it),
    # and attention reads the 1025 keys and values from the cache (the new token's written
    # there first, as paged-attention kernels do)
    read = 6_738_415_616 - 32000 * 4096 + 8 * 4096
    saved = read * (2 - int4) + 8 * 2 * 32 * 4096 * 1025 * 1
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
    weights (68,976,648,192 parameters x (0.5 + 2.5 / 128) bytes: GPTQ/AWQ's groups of 128
    with an fp16 scale and a 4-bit zero point) and an fp8 cache (80 layers x 8 KV heads x
    128 x 2 (K, V) x 4097 tokens x 8 samples x 1 byte); the step reads 42.8 GB, memory-bound
    at the H100 SXM's 3.35 TB/s: 12.8 ms."""
    from roofline.analysis import analyze
    from roofline.memory import memory_breakdown

    w70, h100 = get_workload("llama-2-70b"), get_device("h100")
    run = RunConfig(batch=8, phase="decode", context=4096, weights="int4", kv_dtype="fp8")
    m = memory_breakdown(w70, run)
    assert float(m.params) == pytest.approx(68_976_648_192 * (0.5 + 2.5 / 128))
    assert float(m.kv_cache) == pytest.approx(80 * 8 * 128 * 2 * 4097 * 8 * 1)
    r = analyze(w70, h100, run)
    assert r.bytes.sum() == pytest.approx(42.8e9, rel=2e-3)
    assert r.time_s.sum() == pytest.approx(12.8e-3, rel=2e-3)
    assert r.time_s.sum() == pytest.approx(r.bytes.sum() / 3.35e12, rel=1e-3)
