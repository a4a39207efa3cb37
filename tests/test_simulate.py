"""The serving simulation (roofline/simulate.py), checked by hand: one request alone, a
schedule of three requests under chunked prefill written out iteration by iteration,
preemption when KV blocks run out, a static batch, Little's law on the iteration log, and
reproducibility."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from roofline.calibration import calibration
from roofline.cli import app
from roofline.errors import RooflineError
from roofline.hardware import get_device
from roofline.scenario import Layout, RunConfig
from roofline.simulate import IterationCost, simulate
from roofline.step import step_time
from roofline.traffic import Engine, Requests, arrivals, engine, lengths
from roofline.workloads import get_workload

W = get_workload("llama-3-8b")
H100 = get_device("h100")
RUN = RunConfig(dtype="bf16", attention="flash")
VLLM = Engine("vllm", 256, 2048, 0.9)


def _expected(run: RunConfig) -> float:
    t = step_time(W, run, H100).expected_s
    assert t is not None
    return t


def _one(prompt: int, output: int) -> Requests:
    return Requests(np.array([0.0]), np.array([prompt]), np.array([output]))


def test_the_cost_parts_are_the_step_model():
    cost = IterationCost(W, RUN, H100, 2048)
    # linear(T): a decode step of T tokens at context 1, at the grid's points exactly
    assert cost.linear(64) == _expected(replace(RUN, phase="decode", batch=64, context=1))
    # a prompt of 1024 tokens alone: linear(1024) + its causal attention = the prefill step
    prefill = _expected(replace(RUN, phase="prefill", batch=1, seq=1024, logits="all"))
    assert cost.linear(1024) + cost.prompt_attention(1024) == pytest.approx(prefill, rel=1e-12)
    # a decode step of one request at context 4096: linear(1) + the attention of 4096
    step = _expected(replace(RUN, phase="decode", batch=1, context=4096))
    assert cost.linear(1) + cost.decode_attention(4096) == pytest.approx(step, rel=1e-12)
    # four requests of 1024 read as many KV bytes: the same attention, to 0.1 %
    step = _expected(replace(RUN, phase="decode", batch=4, context=1024))
    assert cost.linear(4) + cost.decode_attention(4096) == pytest.approx(step, rel=1e-3)


def test_one_request_alone():
    """TTFT = its prefill; each later token = one decode step of batch 1 at its context."""
    p, o = 1024, 64
    r = simulate(W, RUN, H100, _one(p, o), VLLM)
    prefill = _expected(replace(RUN, phase="prefill", batch=1, seq=p, logits="all"))
    assert r.first_token_s[0] == pytest.approx(prefill, rel=1e-12)
    steps = [_expected(replace(RUN, phase="decode", batch=1, context=p + j)) for j in range(1, o)]
    # the decode steps of the step model, one by one (attention linear in the context)
    assert r.finish_s[0] - r.first_token_s[0] == pytest.approx(sum(steps), rel=2e-3)
    assert r.stats["tpot_mean_s"] == pytest.approx(np.mean(steps), rel=2e-3)
    assert r.stats["iterations"] == o  # one prefill, o - 1 decode steps


def test_a_low_rate_sees_the_decode_step_of_its_batch():
    """Requests far apart run alone: every TPOT is a batch-1 decode step."""
    n, p, o = 20, 512, 32
    req = Requests(np.arange(n) * 100.0, np.full(n, p), np.full(n, o))
    r = simulate(W, RUN, H100, req, VLLM)
    steps = [_expected(replace(RUN, phase="decode", batch=1, context=p + j)) for j in range(1, o)]
    assert r.stats["tpot_p99_s"] == pytest.approx(np.mean(steps), rel=2e-3)
    assert np.allclose(r.first_token_s - r.arrival_s, r.first_token_s[0])


def test_three_requests_under_chunked_prefill_by_hand():
    """A budget of 256 tokens; prompts 300, 100, 50 arrive together, 3, 2, 2 tokens out.
    it1: r0's first 256 prompt tokens (the budget).
    it2: r0's last 44, then r1's 100 and r2's 50 (194 tokens): all three first tokens.
    it3: three decodes at contexts 301, 101, 51: r1 and r2 are done (2 tokens each).
    it4: r0's decode at context 302: done (3 tokens)."""
    eng = Engine("test", 8, 256, 0.9)
    cost = IterationCost(W, RUN, H100, 256)
    lin, a, dec = cost.linear, cost.prompt_attention, cost.decode_attention
    req = Requests(np.zeros(3), np.array([300, 100, 50]), np.array([3, 2, 2]))
    r = simulate(W, RUN, H100, req, eng, cost)
    it1 = lin(256) + a(256) - a(0)
    it2 = lin(194) + (a(300) - a(256)) + (a(100) - a(0)) + (a(50) - a(0))
    it3 = lin(3) + dec(301 + 101 + 51)
    it4 = lin(1) + dec(302)
    assert r.first_token_s == pytest.approx([it1 + it2] * 3, rel=1e-12)
    assert r.finish_s == pytest.approx([it1 + it2 + it3 + it4, it1 + it2 + it3, it1 + it2 + it3])
    assert r.iterations[:, 1].tolist() == [256, 194, 3, 1]  # tokens of each iteration


def test_preemption_when_kv_blocks_run_out():
    """10 blocks of 16 tokens; two requests of 64 prompt tokens (4 blocks each) and 40
    out. Together they pass 10 blocks at 81 tokens each (6 + 6): the one admitted last is
    preempted, waits, and prefills its prompt and the tokens it had made again."""
    eng = Engine("test", 8, 2048, 0.9)
    req = Requests(np.zeros(2), np.array([64, 64]), np.array([40, 40]))
    r = simulate(W, RUN, H100, req, eng, blocks=10)
    assert r.preemptions.tolist() == [0, 1]
    assert np.isfinite(r.finish_s).all() and r.finish_s[1] > r.finish_s[0]
    assert r.iterations[:, 4].max() <= 10  # never more blocks than there are
    # after r0 is done, r1 re-prefills 64 prompt + the 17 tokens it had made (tokens 65-81
    # needed a 6th block at 81): one iteration of 81 tokens
    assert 81 in r.iterations[:, 1].tolist()


def test_a_static_batch():
    """Static: 4 requests prefilled together (4 x 512 tokens, one pass), then decoded."""
    eng = engine("static", H100, max_num_seqs=4)
    cost = IterationCost(W, RUN, H100, 2048)
    req = Requests(np.zeros(4), np.full(4, 512), np.full(4, 8))
    r = simulate(W, RUN, H100, req, eng, cost)
    first = cost.linear(2048) + 4 * cost.prompt_attention(512)
    assert r.first_token_s == pytest.approx([first] * 4, rel=1e-12)
    decodes = sum(cost.linear(4) + cost.decode_attention(4 * (512 + j)) for j in range(1, 8))
    assert r.finish_s == pytest.approx([first + decodes] * 4, rel=1e-12)


def test_littles_law_on_the_iteration_log():
    """The time average of the requests in the system (running and waiting during each
    iteration, from the log) equals throughput x mean latency (Little's law), within the
    log's resolution (a request that arrives mid-iteration is counted from the next one)."""
    n = 3000
    req = Requests(arrivals(n, 12.0, seed=3), lengths(n, 512, kind="uniform", spread=0.5,
                   seed=4), lengths(n, 128, kind="uniform", spread=0.5, seed=5))  # fmt: skip
    r = simulate(W, RUN, H100, req, engine("vllm", H100))
    log = r.iterations
    area = float(np.sum((log[:, 2] + log[:, 3]) * log[:, 5]))
    span = log[-1, 0] - r.arrival_s[0]
    e2e = r.finish_s - r.arrival_s
    assert area / span == pytest.approx(n / span * e2e.mean(), rel=0.02)


def test_the_same_seed_gives_the_same_records():
    def once() -> np.ndarray:
        n = 500
        req = Requests(arrivals(n, 20.0, kind="gamma", cv=2.0, seed=7),
                       lengths(n, 700, kind="lognormal", spread=0.8, seed=8),
                       lengths(n, 150, kind="lognormal", spread=0.8, seed=9))  # fmt: skip
        r = simulate(W, RUN, H100, req, engine("vllm", H100))
        return np.column_stack([r.first_token_s, r.finish_s, r.preemptions])

    assert np.array_equal(once(), once())


def test_arrivals_have_the_asked_rate_and_burstiness():
    gaps = np.diff(arrivals(200_000, 5.0, kind="gamma", cv=2.0, seed=1))
    assert gaps.mean() == pytest.approx(1 / 5.0, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(2.0, rel=0.03)
    assert np.diff(arrivals(10, 4.0, kind="fixed")) == pytest.approx([0.25] * 9)


def test_vllm_defaults_follow_the_device():
    assert (engine("vllm", H100).max_batched_tokens, engine("vllm", H100).max_num_seqs) == (
        8192,
        1024,
    )
    a100 = engine("vllm", get_device("a100"))  # 80 GB but an A100: the smaller defaults
    assert (a100.max_batched_tokens, a100.max_num_seqs) == (2048, 256)


def test_simulate_cli_json_is_strict(tmp_path):
    args = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--rate", "5", "--requests", "200"]
    res = CliRunner().invoke(app, [*args, "--prompt-tokens", "512", "--output-tokens", "64",
                                   "-f", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["engine"]["name"] == "vllm" and data["requests"] == 200
    assert data["stats"]["ttft_p99_s"] >= data["stats"]["ttft_p50_s"] > 0
    out = tmp_path / "req.parquet"
    res = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows == 200 and "ttft_s" in table.column_names


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rate", "0"], "--rate 0.0: requests a second"),
        (["--rate", "5", "--engine", "vlm"], "unknown engine 'vlm'; did you mean vllm, vllm-v0?"),
        (
            ["--rate", "5", "--prompt-tokens", "9000"],
            "--prompt-tokens 9000: + 256 output tokens = 9256: llama-3-8b takes at most 8192",
        ),
        (["--rate", "5", "--arrival", "weibull"], "--arrival weibull: allowed"),
        (["--rate", "5", "-m", "resnet-50"], "--model resnet-50: serve models a decoder"),
        (["--rate", "5", "--hw", "gtx-580"], "--dtype fp16: NVIDIA GeForce GTX 580 (gtx-580) has"),
    ],
)
def test_simulate_cli_refusals(extra, message):
    args = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--requests", "50", *extra]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert message in line, line


def test_a_closed_loop_keeps_its_clients_busy():
    """4 clients, 12 requests of the same length: at every moment 4 requests are in the
    system, so the requests go in 3 waves of 4, each wave starting when the last ends."""
    req = Requests(np.zeros(12), np.full(12, 256), np.full(12, 16))
    r = simulate(W, RUN, H100, req, VLLM, concurrency=4)
    waves = r.finish_s.reshape(3, 4)
    assert np.all(waves == waves[:, :1])  # each wave finishes together
    assert r.arrival_s[4:8] == pytest.approx([waves[0, 0]] * 4)  # the next wave comes then
    assert r.arrival_s[8:] == pytest.approx([waves[1, 0]] * 4)
    assert waves[1, 0] - waves[0, 0] == pytest.approx(waves[0, 0])  # the same work each wave


def test_the_chart_of_a_simulation(tmp_path):
    """--chart: requests running and waiting over time (top), KV blocks in use (bottom),
    from the iteration log."""
    from roofline.plot import simulation

    req = Requests(arrivals(300, 10.0, seed=1), np.full(300, 512), np.full(300, 64))
    r = simulate(W, RUN, H100, req, VLLM)
    fig = simulation(r, "t")
    top, bottom = fig.axes
    assert [line.get_label() for line in top.get_lines()] == ["running", "waiting"]
    assert max(bottom.get_lines()[0].get_ydata()) <= 100
    out = tmp_path / "sim.png"
    args = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--rate", "5", "--requests", "50",
            "--chart", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"\x89PNG")


def test_the_iteration_log_is_thinned_to_a_bounded_size():
    # _log with room for 4 rows, fed rows 1..10 (time = row number), by hand:
    # rows 1-4 fill it; row 5 finds it full: keep every other (2, 4), keep every 2nd row
    # from now on, 5 kept -> [2, 4, 5]; 6 skipped, 7 kept -> [2, 4, 5, 7]; 8 skipped; 9 finds
    # it full: [4, 7], every 4th from now on, 9 kept -> [4, 7, 9]; 10 skipped.
    from roofline._sim_kernel import _log

    log, meta = np.zeros((4, 6)), np.array([0, 1, 0], dtype=np.int64)
    for i in range(1, 11):
        _log(log, meta, (float(i), 0.0, 0.0, 0.0, 0.0, 0.0))
    assert log[: meta[0], 0].tolist() == [4.0, 7.0, 9.0]


def test_a_long_run_keeps_every_request_and_a_thinned_log(monkeypatch):
    import roofline.simulate as sim

    n = 400
    req = Requests(arrivals(n, 30.0, seed=3), np.full(n, 256), np.full(n, 64))
    cost = IterationCost(W, RUN, H100, 2048)
    whole = simulate(W, RUN, H100, req, VLLM, cost=cost)
    monkeypatch.setattr(sim, "LOG_ROWS", 64)
    thin = simulate(W, RUN, H100, req, VLLM, cost=cost)
    # the requests' records and the counted iterations do not depend on the log's size
    assert np.array_equal(thin.finish_s, whole.finish_s)
    assert thin.stats["iterations"] == whole.stats["iterations"] > 64
    assert len(thin.iterations) <= 64 < len(whole.iterations)
    # the rows kept are rows of the whole log, in time order
    assert set(thin.iterations[:, 0]) <= set(whole.iterations[:, 0])
    assert np.all(np.diff(thin.iterations[:, 0]) > 0)


def test_prefill_batches_alone_in_chunks_by_hand():
    """SGLang's schedule (mixed: False, chunked): a budget of 256 tokens; prompts 300,
    100, 50 arrive together, 3, 2, 2 tokens out.
    it1: a prefill batch: r0's first 256 prompt tokens.
    it2: a prefill batch: r0's last 44, r1's 100, r2's 50: all three first tokens.
    it3: a decode batch of three at contexts 301, 101, 51: r1 and r2 are done.
    it4: r0's decode at context 302."""
    eng = Engine("test", 8, 256, 0.9, mixed=False)
    cost = IterationCost(W, RUN, H100, 256)
    lin, a, dec = cost.linear, cost.prompt_attention, cost.decode_attention
    req = Requests(np.array([0.0, 0.0, 0.0]), np.array([300, 100, 50]), np.array([3, 2, 2]))
    r = simulate(W, RUN, H100, req, eng, cost)
    it1 = lin(256) + a(256) - a(0)
    it2 = lin(194) + (a(300) - a(256)) + (a(100) - a(0)) + (a(50) - a(0))
    it3 = lin(3) + dec(301 + 101 + 51)
    it4 = lin(1) + dec(302)
    assert r.first_token_s == pytest.approx([it1 + it2] * 3, rel=1e-12)
    assert r.finish_s == pytest.approx([it1 + it2 + it3 + it4, it1 + it2 + it3, it1 + it2 + it3])
    # a prompt arriving while others decode gets a prefill iteration of its own first
    late = Requests(np.array([0.0, 1e-6]), np.array([64, 32]), np.array([4, 2]))
    r = simulate(W, RUN, H100, late, eng, cost)
    p0 = lin(64) + a(64)
    p1 = lin(32) + a(32)  # alone: no decode of r0 beside it
    d1 = lin(2) + dec(65 + 33)  # both decode
    assert r.first_token_s == pytest.approx([p0, p0 + p1], rel=1e-12)
    assert r.finish_s[1] == pytest.approx(p0 + p1 + d1, rel=1e-12)
    assert r.iterations[:, 1].tolist()[:3] == [64, 32, 2]


def test_whole_prompts_with_reserved_blocks_by_hand():
    """TensorRT-LLM's schedule (chunked: False, reserve_output): 20 blocks of 16 tokens;
    requests of 128 prompt + 64 output tokens reserve 12 blocks each when they start, so
    only one runs at a time (two would need 24); none is ever preempted. Each prompt is
    prefilled whole, beside the other requests' decodes."""
    eng = Engine("test", 8, 2048, 0.9, chunked=False, reserve_output=True)
    cost = IterationCost(W, RUN, H100, 2048)
    req = Requests(np.zeros(3), np.full(3, 128), np.full(3, 64))
    r = simulate(W, RUN, H100, req, eng, cost, blocks=20)
    assert r.preemptions.tolist() == [0, 0, 0]
    # one at a time: each starts when the one before is done, 12 blocks in use at most
    assert r.first_token_s[1] > r.finish_s[0] and r.first_token_s[2] > r.finish_s[1]
    assert r.iterations[:, 4].max() == 12
    one = cost.linear(128) + cost.prompt_attention(128)
    one += sum(cost.linear(1) + cost.decode_attention(128 + j) for j in range(1, 64))
    assert r.finish_s == pytest.approx([one, 2 * one, 3 * one], rel=1e-9)
    # a prompt longer than the budget cannot be prefilled whole: refused by name
    with pytest.raises(RooflineError, match="max_batched_tokens"):
        simulate(W, RUN, H100, _one(4096, 4), replace(eng, max_batched_tokens=2048), cost)


def test_the_cost_at_another_share_is_the_step_model_at_that_share():
    # at(s) rescales the kernels (K / s + C); building the cost at share s evaluates
    # every step again at that share: the two agree
    cost = IterationCost(W, RUN, H100, 2048)
    again = IterationCost(W, replace(RUN, sustained=0.5), H100, 2048)
    half = cost.at(0.5)
    assert cost.share == calibration().inference_sustained  # the shipped share
    for a, b in ((half.linear_s, again.linear_s), (half.decode_s, again.decode_s),
                 (half.attention_s, again.attention_s)):  # fmt: skip
        assert np.allclose(a, b, rtol=1e-12, atol=0)
    # and on a 2-way tensor layout, whose all-reduces a share does not divide
    tp = replace(RUN, layout=Layout(1, 2, 1))
    cost, again = (
        IterationCost(W, tp, H100, 2048),
        IterationCost(W, replace(tp, sustained=0.9), H100, 2048),
    )
    assert np.allclose(cost.at(0.9).linear_s, again.linear_s, rtol=1e-12, atol=0)


def test_a_shared_prefix_is_cached_once_and_not_prefilled_again():
    """Prefix caching: prompts of 1,024 tokens whose first 520 are a shared system prompt.
    Whole blocks only are shared: 520 // 16 = 32 blocks (512 tokens). A request alone
    prefills its other 512 tokens, whose queries attend to all 1,024 keys: linear(512) +
    A(1024) - A(512). Two requests at once hold the 32 shared blocks once, each its own
    ceil((1024 + 4) / 16) - 32 = 33 blocks at the end: 98 in all."""
    cost = IterationCost(W, RUN, H100, 2048)
    one = simulate(W, RUN, H100, _one(1024, 4), VLLM, cost, prefix_tokens=520)
    ttft = cost.linear(512) + cost.prompt_attention(1024) - cost.prompt_attention(512)
    assert one.first_token_s[0] == pytest.approx(ttft, rel=1e-12)
    assert one.stats["prefix_cached_tokens"] == 512
    two = Requests(np.zeros(2), np.full(2, 1024), np.full(2, 4))
    r = simulate(W, RUN, H100, two, VLLM, cost, prefix_tokens=520)
    assert r.iterations[:, 4].max() == 32 + 2 * 33
    assert r.first_token_s[0] == pytest.approx(
        cost.linear(1024) + 2 * (cost.prompt_attention(1024) - cost.prompt_attention(512)),
        rel=1e-12,
    )
    # without the prefix: the whole prompts, 2 x 65 blocks
    r = simulate(W, RUN, H100, two, VLLM, cost)
    assert r.iterations[:, 4].max() == 2 * 65


def test_a_load_in_stages_by_hand():
    """Fixed gaps: 2 a second for 3 s, then 4 a second for 1 s: arrivals a gap after each
    stage starts, before it ends: 0.5, 1, 1.5, 2, 2.5 then 3.25, 3.5, 3.75."""
    from roofline.simulate import stage_stats
    from roofline.traffic import staged_arrivals

    times, edges = staged_arrivals([(2.0, 3.0), (4.0, 1.0)], kind="fixed")
    assert times.tolist() == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.25, 3.5, 3.75])
    assert edges.tolist() == [0.0, 3.0, 4.0]
    n = len(times)
    r = simulate(W, RUN, H100, Requests(times, np.full(n, 64), np.full(n, 2)), VLLM)
    first, second = stage_stats(r, edges)
    assert (first["requests"], second["requests"]) == (5, 3)
    assert first["offered_requests_per_s"] == pytest.approx(5 / 3)
    assert second["offered_requests_per_s"] == pytest.approx(3.0)
    # each request alone (64 tokens take a few ms): its TTFT is its prefill
    cost = IterationCost(W, RUN, H100, 2048)
    assert first["ttft_p50_s"] == pytest.approx(cost.linear(64) + cost.prompt_attention(64))


def test_goodput_counts_the_requests_within_both_targets():
    from roofline.simulate import goodput

    cost = IterationCost(W, RUN, H100, 2048)
    n = 10
    r = simulate(W, RUN, H100, Requests(np.arange(n) * 10.0, np.full(n, 64), np.full(n, 8)),
                 VLLM, cost)  # fmt: skip
    prefill = cost.linear(64) + cost.prompt_attention(64)  # every TTFT: alone
    span = r.finish_s[-1]  # from the first arrival at 0
    met = goodput(r, prefill * 1.001, None)
    assert met == {"goodput_requests_per_s": pytest.approx(n / span), "slo_attainment": 1.0}
    assert goodput(r, prefill * 0.999, None)["slo_attainment"] == 0.0
    assert goodput(r, None, 1e-6)["goodput_requests_per_s"] == 0.0  # no TPOT of a microsecond


def test_simulate_stages_goodput_and_prefix_on_the_command_line():
    args = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--stages", "2:10,4:10",
            "--prompt-tokens", "256", "--output-tokens", "16", "--ttft", "1", "--tpot", "0.05",
            "--prefix-tokens", "128", "-f", "json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [s["start_s"] for s in data["stages"]] == [0.0, 10.0]
    assert data["goodput"]["slo_attainment"] == 1.0
    assert data["stats"]["prefix_cached_tokens"] == 128
    for extra, message in (
        (["--rate", "5"], "--stages 2:10,4:10: a load of its own"),
        (["--stages", "2:10,x"], "'x': RATE:SECONDS"),
    ):
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code == 2 and message in res.stderr, res.stderr


def test_a_simulation_s_energy_is_idle_power_over_the_span_plus_dynamic_over_the_bound():
    """One request alone, then 10 s of nothing: P = idle + (max - idle) x u over each
    iteration (u = bound / expected) sums to idle x span + (max - idle) x the iterations'
    bound; the idle tail counts idle only. The bound by hand: the prefill step's roofline
    bound and each decode step's (step.step_time's total_s), the PUE on top."""
    from roofline.energy import power_model, site
    from roofline.simulate import simulation_energy

    p, o = 512, 16
    req = Requests(np.array([0.0, 10.0]), np.array([p, p]), np.array([o, o]))
    r = simulate(W, RUN, H100, req, VLLM)
    prefill = step_time(W, replace(RUN, phase="prefill", batch=1, seq=p, logits="all"), H100)
    decodes = [step_time(W, replace(RUN, phase="decode", batch=1, context=p + j), H100)
               for j in range(1, o)]  # fmt: skip
    bound = 2 * (prefill.total_s + sum(d.total_s for d in decodes))
    assert r.bound_s == pytest.approx(bound, rel=2e-3)  # the decode grid interpolates
    span = r.finish_s[1] - r.arrival_s[0]
    model, where = power_model(H100), site(pue=1.2)
    e = simulation_energy(r, H100, 1, where)
    by_hand = (model.idle_w * span + (model.max_w - model.idle_w) * r.bound_s) * 1.2
    assert e.energy_j == pytest.approx(by_hand, rel=1e-12)
    assert e.average_power_w == pytest.approx(by_hand / span, rel=1e-12)


def test_simulate_json_gives_each_measured_figure_its_interval_under_load():
    """A time's interval is [t x low, t x high] of the shipped `load` band; a throughput's
    [x / high, x / low] (it falls as times grow); p90 has no measured counterpart."""
    from roofline.intervals import intervals

    band = intervals().bands["load"]
    args = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--rate", "5", "--requests", "300",
            "-f", "json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    s, iv = data["stats"], data["stats_interval"]
    assert iv["tpot_mean_s"]["low"] == pytest.approx(s["tpot_mean_s"] * band.low_factor)
    assert iv["tpot_mean_s"]["high"] == pytest.approx(s["tpot_mean_s"] * band.high_factor)
    rate = s["output_tokens_per_s"]
    assert iv["output_tokens_per_s"]["low"] == pytest.approx(rate / band.high_factor)
    assert "ttft_p90_s" not in iv


def test_lengths_drawn_from_a_file_of_lengths(tmp_path):
    """--prompt-dist FILE: lengths drawn with replacement from the file's (a header line
    allowed); with every line 100 or 300 the mean lies between and every prompt is one."""
    from roofline.trace import read_lengths
    from roofline.traffic import resample

    f = tmp_path / "prompts.csv"
    f.write_text("prompt_tokens\n100\n300\n\n")
    values = read_lengths(f, "prompt")
    assert values.tolist() == [100, 300]
    x = resample(values, 10_000, seed=1)
    assert set(x.tolist()) == {100, 300} and 190 < x.mean() < 210
    args = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--rate", "5", "--requests", "200",
            "--prompt-dist", str(f), "-f", "csv"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = res.stdout.strip().splitlines()[1:]
    header = res.stdout.splitlines()[0].split(",")
    prompts = {int(r.split(",")[header.index("prompt_tokens")]) for r in rows}
    assert prompts == {100, 300}
    f.write_text("100\n0\n")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "line 2: '0': prompt must be whole, 1 to 1e7" in res.stderr
