"""The expected step time of a layout (roofline/step.py), by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from roofline import RunConfig, analyze, get_device, get_workload
from roofline.calibration import calibration
from roofline.hardware import cluster, link_terms
from roofline.scenario import Cluster, Layout
from roofline.step import step_time

GPT3 = get_workload("gpt-3")
A100 = get_device("a100")


def _parts(step):
    return dict(step.parts)


def test_single_device_ideal_step_is_the_bound():
    run = RunConfig(batch=4, seq=512, phase="training", ideal=True)
    w = get_workload("gpt-2")
    step = step_time(w, run, A100)
    assert step.expected_s == pytest.approx(step.total_s, rel=1e-12)
    assert _parts(step)["bubble"] == 0 and _parts(step)["data"] == 0
    assert _parts(step)["sustained"] == 0
    real = step_time(w, replace(run, ideal=False), A100)
    p = _parts(real)
    # one device, one micro-batch, no recompute: the kernels' expected time is analyze's
    # total at share 1, and the step adds what a training step sustains below it,
    # (1 / s - 1) x that
    kernels = analyze(w, A100, replace(run, ideal=False, sustained=1.0)).total_expected_time_s
    assert p["compute"] == pytest.approx(kernels, rel=1e-12)
    s = calibration().training_sustained
    assert p["sustained"] == pytest.approx((1 / s - 1) * kernels, rel=1e-12)
    assert real.expected_s == pytest.approx(kernels / s, rel=1e-12)


def test_1f1b_bubble_is_stages_minus_one_micro_batches():
    # pp 4, local batch 8 in micro-batches of 1: 8 micro-batches, a bubble of 3 of them
    run = RunConfig(batch=8, seq=2048, phase="training", layout=Layout(1, 8, 4, 0))
    p = _parts(step_time(GPT3, run, A100))
    per_micro = p["compute"] / 8
    assert p["bubble"] == pytest.approx(3 * per_micro)
    # micro-batches of 2: 4 of them, the bubble is 3 of the (twice as long) micro-batches
    p2 = _parts(step_time(GPT3, replace(run, micro_batch=2), A100))
    assert p2["bubble"] == pytest.approx(3 * p2["compute"] / 4)


def test_tensor_parallel_all_reduces_by_hand():
    # GPT-3, tp 8 inside one 8-GPU node, pp 1, one micro-batch of 1 x 2048 tokens, training:
    # 2 passes x 2 all-reduces x 96 blocks, each of 2 x 7/8 x (2048 x 12288 x 2 bytes) on the
    # NVLink (300 GB/s a direction) at the collective efficiency (0.77), + 2 x 7 steps of
    # NCCL's NVLink ring LL latency (0.6 us) + its ring LL base latency a call (6.6 us)
    run = RunConfig(batch=1, seq=2048, phase="training", layout=Layout(1, 8, 1, 0))
    assert link_terms(A100) == pytest.approx((0.77, 0.6e-6, 6.6e-6))
    one = 2 * 7 / 8 * 2048 * 12288 * 2 / (300e9 * 0.77) + 14 * 0.6e-6 + 6.6e-6
    assert _parts(step_time(GPT3, run, A100))["tensor"] == pytest.approx(4 * 96 * one)


def test_a_small_all_reduce_costs_nccls_latency():
    """A 16 KB all-reduce (one decode token's hidden state) inside an 8-GPU A100 node:
    NCCL's tuning model, ring LL: 6.6 us a call + 14 steps x 0.6 us = 15.0 us, and the
    bytes: 2 x 7/8 x 16384 / (300 GB/s x 0.77) = 0.124 us. On 2 GPUs 6.6 + 2 x 0.6 = 7.8 us
    (nccl-tests measure ~6 us on 2 H100, NVIDIA/nccl issue 1259). Ideal mode: no latency."""
    from roofline.step import collective_s, links

    run = RunConfig(batch=1, seq=1, phase="decode")
    lk = links(A100, run)
    nbytes = 2 * 7 / 8 * 16384
    assert collective_s(nbytes, 14, 8, lk, False) == pytest.approx(15.0e-6 + 0.1241e-6, rel=1e-3)
    assert collective_s(1.0, 2, 2, lk, False) == pytest.approx(7.8e-6, rel=1e-3)
    assert collective_s(nbytes, 14, 8, lk, True) == pytest.approx(nbytes / 300e9)
    assert collective_s(0.0, 14, 8, lk, False) == 0.0  # nothing sent, no call


def test_data_parallel_crosses_nodes_on_the_network():
    # tp 8 fills the 8-GPU node: the data-parallel group (stride 8) runs on the network
    net = Cluster(node_size=8, network_bandwidth_bytes_per_s=25e9, network_latency_s=5e-6)
    run = RunConfig(batch=2, seq=2048, phase="training", layout=Layout(2, 8, 1, 0), cluster=net)
    eff, _, call = link_terms(A100)
    grads = GPT3.params * 2 / 8
    reduce = 2 * 1 / 2 * grads / (25e9 * eff) + 2 * 5e-6 + call
    assert _parts(step_time(GPT3, run, A100))["data"] == pytest.approx(reduce)
    # overlapped with the backward pass: hidden up to the backward's length (2/3 of the
    # step's kernels, over the sustained share); here the all-reduce is longer
    hidden = _parts(step_time(GPT3, replace(run, dp_overlap=1.0), A100))
    window = hidden["compute"] * 2 / 3 / calibration().training_sustained
    assert reduce > window
    assert hidden["data"] == pytest.approx(reduce - window)
    # a bigger node keeps it on NVLink (300 GB/s a direction)
    big = replace(run, cluster=replace(net, node_size=16))
    on_link = 2 * 1 / 2 * grads / (300e9 * eff) + 2 * link_terms(A100)[1] + call
    assert _parts(step_time(GPT3, big, A100))["data"] == pytest.approx(on_link)


def test_recomputation_adds_a_forward_pass_and_counts_in_hfu():
    run = RunConfig(batch=1, seq=2048, phase="training", layout=Layout(1, 8, 1, 0))
    plain = step_time(GPT3, run, A100)
    full = step_time(GPT3, replace(run, recompute="full"), A100)
    sel = step_time(GPT3, replace(run, recompute="selective"), A100)
    p, pf, ps = _parts(plain), _parts(full), _parts(sel)
    assert p["recompute"] == 0 < ps["recompute"] < pf["recompute"] < p["compute"] / 2.5
    assert full.hfu > full.mfu and plain.hfu == pytest.approx(plain.mfu)
    # the bound does not include recomputation
    assert full.total_s == pytest.approx(plain.total_s)


def test_vendor_default_cluster_is_used_when_the_run_gives_none():
    assert cluster(A100).node_size == 8
    own = Cluster(4, 1e9, 1e-5)
    assert cluster(A100, own) is own


def test_interleaved_1f1b_divides_the_bubble_and_multiplies_the_sends():
    # Narayanan et al. 2021, section 2.2.2: v model chunks a rank shrink the bubble from
    # (pp - 1) to (pp - 1) / v micro-batch times and send each micro-batch v x as often
    run = RunConfig(batch=8, seq=2048, phase="training", layout=Layout(1, 8, 4, 0))
    plain = _parts(step_time(GPT3, run, A100))
    two = _parts(step_time(GPT3, replace(run, virtual_stages=2), A100))
    per_micro = plain["compute"] / 8
    assert two["bubble"] == pytest.approx(3 * per_micro / 2)
    assert two["pipeline"] == pytest.approx(2 * plain["pipeline"])
    assert two["compute"] == pytest.approx(plain["compute"])


def test_sustained_share_divides_only_the_compute_parts():
    run = RunConfig(batch=8, seq=2048, phase="training", layout=Layout(2, 8, 4, 0))
    off = _parts(step_time(GPT3, replace(run, sustained=1.0), A100))
    half = _parts(step_time(GPT3, replace(run, sustained=0.5), A100))
    assert off["sustained"] == 0
    # at s = 1/2 the compute, recompute and bubble take twice as long; links do not slow
    assert half["sustained"] == pytest.approx(off["compute"] + off["recompute"] + off["bubble"])
    for part in ("tensor", "pipeline", "data"):
        assert half[part] == off[part]
    # a serving step has its own share (inference_sustained); at 1/2 its compute doubles
    decode = RunConfig(batch=8, phase="decode", context=2048, layout=Layout(1, 8, 1, 0))
    d_off = _parts(step_time(GPT3, replace(decode, sustained=1.0), A100))
    d_half = _parts(step_time(GPT3, replace(decode, sustained=0.5), A100))
    assert d_half["sustained"] == pytest.approx(d_off["compute"])
    assert d_half["tensor"] == d_off["tensor"] > 0


def test_layer_tables_carry_the_share_as_a_named_loss():
    """`roofline run`: each layer's expected time is its kernel time / the share, and the
    difference is the loss 'step overhead (fitted)'; on one device the summary equals the
    step model's expected time (one formula for both paths); --ideal and check's per-kernel
    comparison leave it out."""
    from roofline.analysis import SUSTAINED

    w = get_workload("llama-2-7b")
    run = RunConfig(batch=1, phase="decode", context=1024)
    kernels = analyze(w, A100, replace(run, sustained=1.0))
    r = analyze(w, A100, run)
    s = calibration().inference_sustained
    assert r.expected_time_s == pytest.approx(kernels.expected_time_s / s, rel=1e-12)
    assert r.losses[SUSTAINED] == pytest.approx(kernels.expected_time_s * (1 / s - 1))
    assert r.total_expected_time_s == pytest.approx(step_time(w, run, A100).expected_s)
    assert dict(r.loss_totals())[SUSTAINED] > 0
    assert analyze(w, A100, replace(run, ideal=True)).total_expected_time_s == r.total_time_s
    training = RunConfig(batch=1, seq=512, phase="training")
    t = analyze(w, A100, training)
    t1 = analyze(w, A100, replace(training, sustained=1.0))
    assert t.total_expected_time_s == pytest.approx(
        t1.total_expected_time_s / calibration().training_sustained
    )


def test_overlap_hides_no_more_gradient_traffic_than_the_compute_it_runs_under():
    """dp_overlap hides the gradient traffic behind the last micro-batch's backward pass
    (2/3 of its kernels, plus its recomputation) or, with ZeRO-3, the whole step; what is
    longer stays exposed: exposed = traffic - min(overlap x traffic, window / share).
    GPT-2 on 64 replicas over a slow network (1 GB/s): the traffic outlasts the compute;
    4 micro-batches of 1 and full recomputation, so the two windows differ."""
    from roofline.calibration import sustained_share

    w = get_workload("gpt-2")
    a100 = get_device("a100")
    slow = Cluster(8, 1e9, 5e-6)
    for zero in (0, 3):
        base = RunConfig(
            batch=256,
            seq=1024,
            phase="training",
            layout=Layout(64, 1, 1, zero),
            micro_batch=1,
            recompute="full",
            cluster=slow,
        )
        full = dict(step_time(w, base, a100).parts)
        for overlap in (0.5, 1.0):
            parts = dict(step_time(w, replace(base, dp_overlap=overlap), a100).parts)
            share = sustained_share(True, False, None)
            m = 4  # micro-batches a step: 256 / 64 replicas / 1
            stage, again = parts["compute"] / m, parts["recompute"] / m  # one micro-batch
            if zero == 3:
                window = (parts["compute"] + parts["recompute"]) / share
            else:
                window = (2 / 3 * stage + again) / share
            hidden = min(overlap * full["data"], window)
            assert full["data"] > window  # the case this test is about
            assert parts["data"] == pytest.approx(full["data"] - hidden, rel=1e-12)
    # traffic shorter than the window hides whole
    fast = replace(base, cluster=Cluster(8, 1e12, 5e-6), layout=Layout(2, 1, 1, 0))
    assert dict(step_time(w, replace(fast, dp_overlap=1.0), a100).parts)["data"] == 0.0


def test_interleaved_pipeline_traffic_by_hand_in_the_bound_the_expected_time_and_the_sweep():
    """One home for a layout's traffic (parallel.traffic): the roofline bound and the
    expected time send the same pipeline bytes, and with v model chunks a rank each
    micro-batch crosses v x as many stage boundaries (Narayanan et al. 2021, sec. 2.2).
    BERT-Large (24 blocks, hidden 1024), fp16 training, batch 8 of 128 tokens, pp 4, v 2:
    8 micro-batches of 1 sample (the default when pipelined), each sending its boundary
    activation of 1 x 128 x 1024 x 2 B = 262,144 B forward and its gradient back, v = 2
    times: 8 x 2 x 2 = 32 sends a step, 8,388,608 B a device."""
    from roofline.parallel import communication
    from roofline.step import links
    from roofline.whatif import build_sweep, run_sweep

    w = get_workload("bert-large")
    run = RunConfig(
        batch=8,
        seq=128,
        dtype="fp16",
        phase="training",
        layout=Layout(1, 1, 4, 0),
        virtual_stages=2,
    )
    boundary = 1 * 128 * 1024 * 2
    sends = 8 * 2 * 2  # micro-batches x (forward, backward) x v
    assert w.arch.boundary_elements(run.micro()) * 2 == boundary
    c = communication(w, run)
    assert c.pipeline_bytes == sends * boundary == 8_388_608
    assert c.tensor_bytes == 0 and c.data_bytes == 0  # tp 1, one replica
    # the bound: those bytes on the A100's NVLink, 300 GB/s a direction
    step = step_time(w, run, A100)
    assert step.communication_s == pytest.approx(8_388_608 / 300e9, rel=1e-15)
    # the expected time: the same 32 sends, each at the collective efficiency (0.77) plus
    # one step of NVLink latency (0.6 us) and the call's (6.6 us); the 4 ranks fit a node
    one = boundary / (300e9 * 0.77) + 0.6e-6 + 6.6e-6
    assert links(A100, run).node_size == 8
    assert _parts(step)["pipeline"] == pytest.approx(sends * one, rel=1e-15)
    # v = 1 sends half as much in both
    plain = replace(run, virtual_stages=1)
    assert communication(w, plain).pipeline_bytes == c.pipeline_bytes / 2
    assert _parts(step_time(w, plain, A100))["pipeline"] == pytest.approx(sends / 2 * one)
    # and the sweep, through the same function: its bound and expected time are step_time's
    sweep = build_sweep(
        w,
        [A100],
        run,
        batches=[8],
        seqs=[128],
        contexts=[None],
        dtypes=["fp16"],
        replicas=[1],
    )
    out = run_sweep(sweep)
    assert out.time_s[0, 0] == pytest.approx(step.total_s, rel=1e-12)
    assert out.expected_time_s[0, 0] == pytest.approx(step.expected_s, rel=1e-12)
