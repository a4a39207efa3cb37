"""The expected-time model (roofline/efficiency.py), by hand on small shapes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from roofline import RunConfig, analyze, get_device
from roofline.cli import app
from roofline.efficiency import Ceilings, expected_times, gemm_utilization
from roofline.errors import FieldError, SpecError
from roofline.hardware import ceilings, load_device_file
from roofline.layers import LayerTableBuilder


@pytest.mark.parametrize(
    ("shape", "units", "q"),
    [
        # 4096^3 on 108 units, 128x128 tiles: 32 x 32 = 1024 tiles in ceil(1024/108) = 10
        # waves of 108 slots: 1024 / 1080 busy
        ((1, 4096, 4096, 4096), 108, 1024 / 1080),
        # m = 129 on 128-row tiles: 2 x 1 tiles (half of the second one padding), split-K
        # in 2 to fill 4 units: padding share 129*128/(2*128*128), all units busy
        ((1, 129, 128, 4096), 4, 129 * 128 / (2 * 128 * 128)),
        # a decode GEMV, m = 1: 16-row tiles, 4096/128 = 32 tiles, split-K 3 (floor(108/32)),
        # 96 of 108 units busy, 1 of 16 tile rows useful
        ((1, 1, 4096, 4096), 108, (1 / 16) * (96 / 108)),
        # a small k cannot be split: 32 tiles on 108 units, k = 256 allows 1 part
        ((1, 512, 512, 256), 108, 16 / 108),
        # attention scores, 32 groups of 128 x 128 (x 64): 32 tiles; k = 64 not split
        ((32, 128, 128, 64), 108, 32 / 108),
        # exactly one full wave
        ((108, 128, 128, 4096), 108, 1.0),
    ],
)
def test_gemm_utilization_by_hand(shape, units, q):
    g, m, n, k = shape
    assert gemm_utilization(g, m, n, k, units, 128, 128) == pytest.approx(q, rel=1e-12)


def test_non_gemm_rows_are_not_quantized():
    q = gemm_utilization(np.array([0.0, 1.0]), [0, 4096], [0, 4096], [0, 4096], 108, 128, 128)
    assert q[0] == 1.0 and q[1] == pytest.approx(1024 / 1080)


def _table(training: bool = False):
    out = LayerTableBuilder()
    out.linear("big", 4096, 4096, 4096, bias=False)  # 2 x 4096^3 = 1.374e11 FLOP
    out.add("tiny", "elementwise", flops=1000, inputs=1000, outputs=1000, count=10)
    return out.build(2)


CEIL = Ceilings(
    flops_per_s=250e12,
    bandwidth_bytes_per_s=1.8e12,
    compute_units=108,
    tile_m=128,
    tile_n=128,
    kernel_overhead_s=4e-6,
    source="test",
    default=False,
)


def test_expected_time_by_hand():
    t = _table()
    flops, nbytes = t.total_flops, t.total_bytes
    bound = np.maximum(flops / 312e12, nbytes / 2039e9)
    e = expected_times(t, flops, nbytes, bound, CEIL, training=False)
    # big: 1.374e11 FLOP / (250e12 x 1024/1080) = 0.5798 ms (compute binds; 100 MB / 1.8 TB/s
    # = 0.056 ms); one kernel, far longer than 4 us: no overhead
    big = 2 * 4096**3 / (250e12 * 1024 / 1080)
    assert e.time_s[0] == pytest.approx(big)
    assert e.losses["compute ceiling"][0] == pytest.approx(2 * 4096**3 / 250e12 - bound[0])
    assert e.losses["quantization"][0] == pytest.approx(big - 2 * 4096**3 / 250e12)
    assert e.losses["kernel overhead"][0] == 0
    # tiny: 10 kernels of 4 kB at 1.8 TB/s (2.2 ns each) wait 4 us each for their launch
    assert e.time_s[1] == pytest.approx(10 * 4e-6)
    assert e.losses["kernel overhead"][1] == pytest.approx(10 * (4e-6 - 4000 / 1.8e12))
    assert e.losses["bandwidth ceiling"][1] == pytest.approx(10 * 4000 * (1 / 1.8e12 - 1 / 2039e9))
    # the losses add up to the gap
    total = sum(e.losses.values())
    np.testing.assert_allclose(bound + total, e.time_s, rtol=1e-12)


def test_cache_tier_and_transcendentals_by_hand():
    # A CPU-like device: 100 GFLOP/s, 20 GB/s DRAM, a 2 MiB cache at 80 GB/s, 2e8 exp/tanh
    # evaluations a second, no launch overhead. Rows (fp32, 4 B an element):
    out = LayerTableBuilder()
    # "gelu": 1e6 elements in and out = 8 MB an instance (does not fit the cache): memory
    # 8e6 / 20e9 = 0.4 ms; FLOPs 9e6 / 1e11 = 0.09 ms; tanh 1e6 / 2e8 = 5 ms -> 5 ms
    out.add("gelu", "activation", flops=9e6, inputs=1e6, outputs=1e6, transcendentals=1e6)
    # "add": 3 x 65,536 elements = 786,432 B an instance (fits 2 MiB), 4 repeats:
    # 4 x 786,432 / 80e9 = 39.3 us at the cache's bandwidth instead of 157.3 us at DRAM's
    out.add("add", "elementwise", flops=65536, inputs=2 * 65536, outputs=65536, count=4)
    t = out.build(4)
    c = replace(
        CEIL,
        flops_per_s=100e9,
        bandwidth_bytes_per_s=20e9,
        kernel_overhead_s=0.0,
        transcendentals_per_s=2e8,
        cache_bytes=2 * 2**20,
        cache_bandwidth_bytes_per_s=80e9,
    )
    flops, nbytes = t.total_flops, t.total_bytes
    bound = np.maximum(flops / 100e9, nbytes / 25e9)  # a datasheet 25 GB/s
    e = expected_times(t, flops, nbytes, bound, c, training=False)
    assert e.time_s[0] == pytest.approx(1e6 / 2e8)
    assert e.losses["transcendentals"][0] == pytest.approx(5e-3 - 8e6 / 20e9)
    assert e.losses["cache"][0] == 0  # 8 MB does not fit
    assert e.time_s[1] == pytest.approx(4 * 786_432 / 80e9)
    assert e.losses["cache"][1] == pytest.approx(4 * 786_432 / 80e9 - 4 * 786_432 / 20e9)
    np.testing.assert_allclose(bound + sum(e.losses.values()), e.time_s, rtol=1e-12)
    # without the device's figures neither term exists (GPU files): the plain model
    plain = expected_times(
        t,
        flops,
        nbytes,
        bound,
        replace(c, transcendentals_per_s=None, cache_bytes=None),
        training=False,
    )
    np.testing.assert_allclose(plain.time_s, [8e6 / 20e9, 4 * 786_432 / 20e9])


def test_cache_and_transcendentals_in_a_device_file(tmp_path):
    path = tmp_path / "cpu.yaml"
    path.write_text(
        DEVICE
        + "efficiency: {memory_bandwidth: 900 GB/s, transcendentals_per_s: 3.5e8, "
        + 'cache: {size: 2 MiB, bandwidth: 1500 GB/s}, source: "bench"}\n'
    )
    c = ceilings(load_device_file(path), "fp16")
    assert (c.transcendentals_per_s, c.cache_bytes, c.cache_bandwidth_bytes_per_s) == (
        3.5e8,
        2 * 2**20,
        1500e9,
    )
    path.write_text(
        DEVICE + "efficiency: {memory_bandwidth: 900 GB/s, cache: {size: 2 MiB, "
        'bandwidth: 800 GB/s}, source: "bench"}\n'
    )
    with pytest.raises(SpecError, match=r"efficiency\.cache: its bandwidth must be above"):
        load_device_file(path)


def test_training_launches_three_kernels_per_gemm():
    t = _table()
    flops, nbytes = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    e = expected_times(t, flops, nbytes, np.zeros(2), CEIL, training=True)
    np.testing.assert_allclose(e.time_s, [3 * 4e-6, 2 * 10 * 4e-6])


def test_ideal_is_the_bound_and_the_bound_is_unchanged():
    run = RunConfig(batch=8, seq=512)
    real = analyze("bert-large", "a100", run)
    ideal = analyze("bert-large", "a100", replace(run, ideal=True))
    np.testing.assert_array_equal(ideal.expected_time_s, ideal.time_s)
    np.testing.assert_array_equal(real.time_s, ideal.time_s)  # the bound is the same
    assert real.total_expected_time_s > real.total_time_s
    assert ideal.mfu == pytest.approx(ideal.bound_utilization)
    assert real.mfu == pytest.approx(real.total_flops / real.total_expected_time_s / 312e12)


DEVICE = """
name: "Test GPU"
vendor: "NVIDIA"
release: "2024-01"
peak: {fp16: 100 TFLOP/s, fp32: 10 TFLOP/s}
memory: {capacity: 16 GB, bandwidth: 1000 GB/s, type: "HBM"}
onchip_cache: null
interconnect: null
tdp: null
compute_units: 50
source: "test"
"""


def test_measured_ceilings_win_over_vendor_defaults(tmp_path):
    path = tmp_path / "gpu.yaml"
    path.write_text(
        DEVICE
        + "efficiency: {gemm: {fp16: 70 TFLOP/s}, memory_bandwidth: 900 GB/s, "
        + 'kernel_overhead: 3 us, tile: [256, 128], source: "bench"}\n'
    )
    c = ceilings(load_device_file(path), "fp16")
    assert (c.flops_per_s, c.bandwidth_bytes_per_s, c.kernel_overhead_s) == (70e12, 900e9, 3e-6)
    assert (c.tile_m, c.tile_n, c.compute_units, c.default) == (256, 128, 50, False)
    # fp32 was not measured: the vendor default fraction of its peak, labelled a default
    c32 = ceilings(load_device_file(path), "fp32")
    assert c32.default and c32.flops_per_s < 10e12 and "default for NVIDIA" in c32.source


def test_a_16_bit_measurement_stands_for_the_other_on_one_tensor_core_path(tmp_path):
    """hardware/a100.yaml measures bf16 GEMMs only (271.2 TFLOP/s, stas00/ml-engineering's
    table); NVIDIA runs fp16 and bf16 on the same tensor-core path at the same 312 TFLOP/s
    peak (A100 whitepaper), so fp16 takes the bf16 figure, not 80 % x 312 = 249.6, and
    BERT-Large's expected time is the same in both (3.62 vs 3.44 ms before)."""
    a100 = get_device("a100")
    c16, cb = ceilings(a100, "fp16"), ceilings(a100, "bf16")
    assert c16.flops_per_s == cb.flops_per_s == 271.2e12
    assert c16.gemm_measured and "the bf16 measurement" in c16.source
    run = RunConfig(batch=1, seq=512)
    t16 = analyze("bert-large", "a100", run).expected_time_s
    tb = analyze("bert-large", "a100", replace(run, dtype="bf16")).expected_time_s
    assert t16 == pytest.approx(tb, rel=1e-12)
    # only at equal peaks: a device whose bf16 peak differs keeps the vendor default for fp16
    path = tmp_path / "gpu.yaml"
    path.write_text(
        DEVICE.replace("{fp16: 100 TFLOP/s,", "{fp16: 100 TFLOP/s, bf16: 50 TFLOP/s,")
        + 'efficiency: {gemm: {bf16: 45 TFLOP/s}, source: "bench"}\n'
    )
    assert ceilings(load_device_file(path), "fp16").flops_per_s == pytest.approx(0.80 * 100e12)
    # and only for a vendor that says so (hardware/defaults/efficiency.yaml `same_path`):
    # the MI300X's fp16 stays at AMD's default share of its peak, not its bf16 measurement
    mi = get_device("mi300x")
    assert ceilings(mi, "fp16").flops_per_s == pytest.approx(0.60 * mi.peak("fp16"))


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('efficiency: {gemm: {fp16: 170 TFLOP/s}, source: "x"}', "above the dense peak"),
        ('efficiency: {gemm: {bf16: 70 TFLOP/s}, source: "x"}', "no peak for this datatype"),
        ('efficiency: {memory_bandwidth: 2 TB/s, source: "x"}', "above the datasheet"),
        ('efficiency: {kernel_overhead: 3 parsecs, source: "x"}', "kernel_overhead"),
        ('efficiency: {tile: [0, 128], source: "x"}', "efficiency.tile"),
        ("network: {bandwidth: 25 GB/s}", "network.latency: missing"),
    ],
)
def test_bad_efficiency_fields(tmp_path, block, message):
    path = tmp_path / "gpu.yaml"
    path.write_text(DEVICE + block + "\n")
    with pytest.raises(SpecError, match=message):
        load_device_file(path)


def test_every_shipped_device_has_ceilings_for_every_dtype():
    from roofline import list_devices

    for d in list_devices():
        for dtype in d.dtypes:
            c = ceilings(d, dtype)
            assert 0 < c.flops_per_s <= d.peak(dtype)
            assert 0 < c.bandwidth_bytes_per_s <= d.memory_bandwidth_bytes_per_s
            assert c.compute_units >= 1 and c.kernel_overhead_s > 0 and c.source


def test_run_json_carries_both_times():
    args = ["run", "-m", "llama-2-7b", "--hw", "a100", "--phase", "decode", "--context", "1024"]
    res = CliRunner().invoke(app, [*args, "-f", "json"])
    data = json.loads(res.stdout)
    s = data["summary"]
    assert s["expected_time_s"] == pytest.approx(sum(x["expected_time_s"] for x in data["layers"]))
    assert s["time_s"] < s["expected_time_s"]
    assert s["mfu"] == pytest.approx(s["flops"] / s["expected_time_s"] / 312e12)
    assert sum(s["losses_s"].values()) == pytest.approx(s["expected_time_s"] - s["time_s"])
    ideal = json.loads(
        CliRunner()
        .invoke(app, ["run", "-m", "llama-2-7b", "--hw", "a100", "--ideal", "-f", "json"])
        .stdout
    )
    assert ideal["summary"]["expected_time_s"] == pytest.approx(ideal["summary"]["time_s"])
    assert ideal["summary"]["ceilings"] is None
    assert get_device("a100").peak("fp16") == 312e12


def test_device_prices_name_their_source_and_date(tmp_path):
    from roofline import list_devices

    priced = [d for d in list_devices() if d.price is not None]
    assert len(priced) >= 15
    for d in priced:
        assert d.price.currency == "USD" and d.price.per_hour > 0
        assert "skypilot-catalog" in d.price.source and d.price.date
    # the H100 file: AWS p5.48xlarge, 8 GPUs at $55.04 an hour
    assert get_device("h100").price.per_hour == pytest.approx(55.04 / 8)
    path = tmp_path / "gpu.yaml"
    path.write_text(DEVICE + 'price: {per_hour: 2, currency: dollars, date: "2025", source: "x"}\n')
    with pytest.raises(SpecError, match=r"price\.currency: a three-letter currency code"):
        load_device_file(path)
    path.write_text(DEVICE + 'price: {per_hour: -2, currency: USD, date: "2025", source: "x"}\n')
    with pytest.raises(SpecError, match=r"price\.per_hour: must be > 0"):
        load_device_file(path)


def test_measured_gemm_curve_replaces_the_tile_model_by_hand(tmp_path):
    # A curve by the smallest dimension: 25 GFLOP/s at 1, 85 at 16, 208 at 256; at 4 the
    # log-size interpolation is halfway from 1 to 16 (ln 4 / ln 16 = 0.5): 55 GFLOP/s.
    from roofline.efficiency import curve_rate

    curve = ((1.0, 25e9), (16.0, 85e9), (256.0, 208e9))
    assert curve_rate(4, curve) == pytest.approx(55e9)
    assert curve_rate(0.5, curve) == 25e9 and curve_rate(4096, curve) == 208e9  # the ends
    # a 4 x 2048 x 2048 GEMM (33.6 MFLOP) on a 300 GFLOP/s device with that curve, 30 GB/s:
    # compute 2 x 4 x 2048^2 / 55e9 = 0.610 ms, memory (16.8 MB of weights + 65.5 kB) at
    # 30 GB/s = 0.561 ms: the curve's rate binds -> 0.610 ms
    out = LayerTableBuilder()
    out.linear("gemv", 4, 2048, 2048, bias=False)
    t = out.build(4)
    c = replace(
        CEIL, flops_per_s=300e9, bandwidth_bytes_per_s=30e9, kernel_overhead_s=0.0, gemm_curve=curve
    )
    bound = np.maximum(t.total_flops / 300e9, t.total_bytes / 40e9)
    e = expected_times(t, t.total_flops, t.total_bytes, bound, c, training=False)
    assert e.time_s[0] == pytest.approx(2 * 4 * 2048**2 / 55e9)
    # in a device file, checked: above the peak or sizes not increasing are refused
    path = tmp_path / "gpu.yaml"
    for curve_text, message in (
        ("{fp16: [[1, 200 TFLOP/s]]}", "above the dense peak"),
        ("{fp16: [[16, 1 TFLOP/s], [4, 2 TFLOP/s]]}", "dimensions increasing"),
    ):
        path.write_text(DEVICE + f'efficiency: {{gemm_curve: {curve_text}, source: "x"}}\n')
        with pytest.raises(SpecError, match=message):
            load_device_file(path)
    path.write_text(
        DEVICE
        + 'efficiency: {gemm_curve: {fp16: [[1, 2 TFLOP/s], [64, 50 TFLOP/s]]}, source: "x"}\n'
    )
    assert ceilings(load_device_file(path), "fp16").gemm_curve == ((1.0, 2e12), (64.0, 50e12))


def test_flash_attention_runs_at_its_measured_ceiling_by_hand():
    """Llama-2-7B, batch 1 x 4096 tokens, training, FlashAttention on an H100 in bf16. The
    fused kernel reaches 299 TFLOP/s (FlashAttention-2, Dao 2023 Fig. 7(d): the mean of
    265, 294, 308, 328 at 2k-16k), the GEMM ceiling is 794.5 TFLOP/s (mamf-finder): a share
    of 299 / 794.5, x 3 / 3.5 in training (the paper counts a backward of 2.5 forwards, the
    table 2). Tiles: 32 heads x 4096 / 128 x 128 / 128 = 1024 on 132 SMs: 8 waves, q =
    1024 / (8 x 132). Forward FLOPs: 4096^2 x 32 heads x (4 x 128 + 6 for the softmax) x
    (4097 / 8192) (the causal blocks), x 3 in training."""
    from roofline import RunConfig, get_device, get_workload
    from roofline.analysis import analyze

    run = RunConfig(batch=1, seq=4096, phase="training", dtype="bf16", attention="flash")
    a = analyze(get_workload("llama-2-7b"), get_device("h100"), run)
    i = list(a.layers.name).index("block.attn.flash")
    fwd = 4096**2 * 32 * (4 * 128 + 6) * 4097 / 8192
    assert a.layers.flops[i] == pytest.approx(3 * fwd)
    share = 299 / 794.5 * 3 / 3.5
    q = 1024 / (8 * 132)
    per_layer = 3 * fwd / (794.5e12 * q * share)
    # the layer table divides by the training share (calibration) too
    from roofline.calibration import calibration

    s = calibration().training_sustained
    assert a.expected_time_s[i] == pytest.approx(32 * per_layer / s, rel=1e-9)
    assert a.ceilings is not None and a.ceilings.attention_flops_per_s == 299e12


def test_fp8_attention_runs_at_the_bf16_rate_by_hand():
    """FP8 training quantizes the GEMMs, not attention (Transformer Engine: fp8_dpa off by
    default): Llama-2-7B, batch 1 x 4096 tokens, training, FlashAttention on an H100 in
    fp8. The GEMM ceiling is 1402.6 TFLOP/s (mamf-finder's fp8 row), but the fused
    attention runs at the bf16 kernel's 299 TFLOP/s (FlashAttention-2, Dao 2023 Fig.
    7(d)), x 3 / 3.5 in training: the same time as in a bf16 run. Tiles as in the bf16
    test above: q = 1024 / (8 x 132); forward FLOPs 4096^2 x 32 x (4 x 128 + 6) x 4097 /
    8192, x 3 in training; 32 layers; / the training share."""
    from roofline import RunConfig, get_device, get_workload
    from roofline.analysis import analyze
    from roofline.calibration import calibration

    w, h100 = get_workload("llama-2-7b"), get_device("h100")
    run = RunConfig(batch=1, seq=4096, phase="training", dtype="fp8", attention="flash")
    a = analyze(w, h100, run)
    i = list(a.layers.name).index("block.attn.flash")
    fwd = 4096**2 * 32 * (4 * 128 + 6) * 4097 / 8192
    q = 1024 / (8 * 132)
    s = calibration().training_sustained
    by_hand = 32 * 3 * fwd / (299e12 * q * 3 / 3.5) / s
    assert a.expected_time_s[i] == pytest.approx(by_hand, rel=1e-9)
    bf16 = analyze(w, h100, replace(run, dtype="bf16"))
    assert a.expected_time_s[i] == pytest.approx(bf16.expected_time_s[i], rel=1e-12)
    assert a.ceilings is not None and a.ceilings.attention_dtype == "bf16"
    assert a.ceilings.flops_per_s == 1402.6e12  # the GEMMs stay at the fp8 ceiling
    # an FP8 attention kernel stated (--attention-dtype fp8): the H100's file gives no fp8
    # attention rate, so the fp8 GEMM ceiling, as for any fp8 GEMM
    fp8 = analyze(w, h100, replace(run, attention_dtype="fp8"))
    assert fp8.expected_time_s[i] == pytest.approx(32 * 3 * fwd / (1402.6e12 * q) / s, rel=1e-9)


def test_fp8_attention_without_a_measured_kernel_runs_at_the_bf16_gemm_ceiling():
    """An L40S measures nothing: an fp8 prefill's fused attention runs at the bf16 GEMM
    ceiling (NVIDIA's default 80 % of the 362.05 TFLOP/s bf16 peak), with no training-style
    kernel factor: its time is the bf16 run's, not 80 % of the 733 TFLOP/s fp8 peak's."""
    from roofline import RunConfig, get_device, get_workload
    from roofline.analysis import analyze

    w, l40s = get_workload("llama-2-7b"), get_device("l40s")
    run = RunConfig(batch=1, seq=4096, phase="prefill", dtype="fp8", attention="flash")
    a, b = analyze(w, l40s, run), analyze(w, l40s, replace(run, dtype="bf16"))
    i = list(a.layers.name).index("block.attn.flash")
    assert a.ceilings is not None and not a.ceilings.attention_kernel
    assert a.ceilings.attention_flops_per_s == pytest.approx(0.8 * l40s.peak("bf16"))
    assert a.expected_time_s[i] == pytest.approx(b.expected_time_s[i], rel=1e-12)
    # int8 (SmoothQuant-style serving) likewise; a device without the datatype named is
    # refused by the field's name
    c = analyze(w, l40s, replace(run, dtype="int8"))
    assert c.expected_time_s[i] == pytest.approx(b.expected_time_s[i], rel=1e-12)
    with pytest.raises(FieldError, match=r"attention_dtype.*no fp8 peak"):
        analyze(w, get_device("a100"), replace(run, dtype="fp16", attention_dtype="fp8"))
