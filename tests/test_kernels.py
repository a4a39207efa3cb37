"""The engine against a slow reference, a hand calculation, and the roofline invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from naive import roofline_naive

from roofline.kernels import evaluate, evaluate_numpy

ENGINES = ["numba", "numpy"]


def _random_problem(seed: int, n_layers: int, n_devices: int):
    rng = np.random.default_rng(seed)
    flops = 10 ** rng.uniform(0, 15, n_layers)
    flops[::7] = 0.0  # layers without arithmetic (lookups) are legal
    nbytes = 10 ** rng.uniform(0, 12, n_layers)
    peak = 10 ** rng.uniform(9, 16, n_devices)
    bw = 10 ** rng.uniform(9, 13, n_devices)
    return flops, nbytes, peak, bw


@pytest.mark.parametrize("seed", range(5))
def test_numba_matches_numpy_reference_to_1e12(seed):
    f, b, p, w = _random_problem(seed, 503, 37)
    fast = evaluate(f, b, p, w, engine="numba")
    ref = evaluate_numpy(f, b, p, w)
    for name in ("intensity", "ridge", "attainable_flops_per_s", "time_s"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(fast.compute_bound, ref.compute_bound)


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_match_naive_loops(engine):
    f, b, p, w = _random_problem(99, 41, 5)
    out = evaluate(f, b, p, w, engine=engine)
    time, attainable, compute = roofline_naive(f, b, p, w)
    np.testing.assert_allclose(out.time_s, time, rtol=1e-12, atol=0)
    np.testing.assert_allclose(out.attainable_flops_per_s, attainable, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(out.compute_bound, compute)


def test_auto_engine_switches_to_numba_on_large_problems(monkeypatch):
    import roofline._compiled as compiled

    calls = []
    kernel = compiled.roofline
    monkeypatch.setattr(compiled, "roofline", lambda *a: calls.append(1) or kernel(*a))
    small = _random_problem(3, 100, 10)
    evaluate(*small)
    assert calls == []  # 1,000 evaluations: numpy
    f, b, p, w = _random_problem(3, 2000, 600)  # 1.2 million evaluations: numba
    auto = evaluate(f, b, p, w)
    assert calls == [1]
    ref = evaluate_numpy(f, b, p, w)
    np.testing.assert_allclose(auto.time_s, ref.time_s, rtol=1e-12, atol=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_single_gemm_by_hand(engine):
    # C = A B with A, B, C all 4096 x 4096 in fp16 on an A100 80GB (312 TFLOP/s, 2039 GB/s).
    n = 4096
    flops = 2 * n**3  # 1.374e11 FLOP: n^3 multiply-adds
    nbytes = 3 * n * n * 2  # read A and B, write C: 100.7 MB
    out = evaluate([flops], [nbytes], [312e12], [2039e9], engine=engine)
    assert out.intensity[0] == pytest.approx(1365.33, rel=1e-5)  # n/3 FLOP/byte in fp16
    assert out.ridge[0] == pytest.approx(153.016, rel=1e-5)
    assert out.compute_bound[0, 0]
    assert out.time_s[0, 0] == pytest.approx(440.5e-6, rel=1e-4)  # 1.374e11 / 312e12
    assert out.attainable_flops_per_s[0, 0] == 312e12
    # the same GEMM as a matrix-vector product (n = 1 column) is memory-bound
    gemv_flops, gemv_bytes = 2 * n * n, (n * n + 2 * n) * 2
    out = evaluate([gemv_flops], [gemv_bytes], [312e12], [2039e9], engine=engine)
    assert not out.compute_bound[0, 0]
    assert out.time_s[0, 0] == pytest.approx(gemv_bytes / 2039e9, rel=1e-12)


def test_bad_arrays_are_rejected():
    with pytest.raises(ValueError, match="bytes: values must be > 0"):
        evaluate([1.0], [0.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([1.0, 2.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        evaluate([np.nan], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="engine"):
        evaluate([1.0], [1.0], [1.0], [1.0], engine="gpu")


positive = st.floats(min_value=1e-3, max_value=1e18, allow_nan=False, allow_infinity=False)
nonneg = st.floats(min_value=0.0, max_value=1e18, allow_nan=False, allow_infinity=False)
scale = st.floats(min_value=1.0, max_value=1e6)
layer = st.tuples(nonneg, positive)
device = st.tuples(positive, positive)


@given(
    layers=st.lists(layer, min_size=1, max_size=8), devices=st.lists(device, min_size=1, max_size=4)
)
def test_time_is_at_least_both_bounds(layers, devices):
    f, b = map(np.array, zip(*layers))
    p, w = map(np.array, zip(*devices))
    out = evaluate(f, b, p, w, engine="numba")
    assert np.all(out.time_s >= f[:, None] / p[None, :])
    assert np.all(out.time_s >= b[:, None] / w[None, :])
    assert np.all(out.attainable_flops_per_s <= p[None, :])


@given(layers=st.lists(layer, min_size=1, max_size=8), dev=device, k=scale)
def test_more_bandwidth_or_peak_never_slows_a_layer(layers, dev, k):
    f, b = map(np.array, zip(*layers))
    p, w = dev
    base = evaluate(f, b, [p], [w], engine="numba").time_s[:, 0]
    faster_memory = evaluate(f, b, [p], [w * k], engine="numba").time_s[:, 0]
    faster_compute = evaluate(f, b, [p * k], [w], engine="numba").time_s[:, 0]
    assert np.all(faster_memory <= base)
    assert np.all(faster_compute <= base)


@given(
    layers=st.lists(layer, min_size=1, max_size=8), devices=st.lists(device, min_size=1, max_size=4)
)
def test_compute_bound_exactly_at_or_above_the_ridge(layers, devices):
    f, b = map(np.array, zip(*layers))
    p, w = map(np.array, zip(*devices))
    out = evaluate(f, b, p, w, engine="numba")
    intensity = f / b
    ridge = p / w
    np.testing.assert_array_equal(out.compute_bound, intensity[:, None] >= ridge[None, :])
    # below the ridge the memory roof is the limit: attainable = intensity x bandwidth
    below = ~out.compute_bound
    roof = intensity[:, None] * w[None, :]
    np.testing.assert_allclose(out.attainable_flops_per_s[below], roof[below], rtol=1e-12)


def _random_sweep(seed: int, n_layers: int = 9, n_terms: int = 6, n_dtypes: int = 2):
    rng = np.random.default_rng(seed)
    flops = rng.uniform(0, 1e9, (n_layers, n_terms))
    flops[::4] = 0.0  # lookups: no arithmetic
    nbytes = rng.uniform(1, 1e8, (n_dtypes, n_layers, n_terms))
    io = rng.uniform(0, 1e7, (n_dtypes, n_layers, n_terms))
    basis = rng.uniform(1, 50, (23, n_terms))
    dtype_index = rng.integers(0, n_dtypes, 23)
    peak = 10 ** rng.uniform(11, 15, (n_dtypes, 4))
    bw = 10 ** rng.uniform(10, 12.5, 4)
    return flops, nbytes, io, basis, dtype_index, peak, bw


@pytest.mark.parametrize("seed", range(3))
def test_sweep_kernel_matches_naive_loops(seed):
    from naive import sweep_naive

    from roofline.kernels import sweep

    args = _random_sweep(seed)
    out = sweep(*args)
    time, share, flops, working = sweep_naive(*args)
    np.testing.assert_allclose(out.time_s, time, rtol=1e-12)
    np.testing.assert_allclose(out.memory_share, share, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out.flops, flops, rtol=1e-12)
    np.testing.assert_allclose(out.working_bytes, working, rtol=1e-12)


def test_sweep_kernel_by_hand():
    from roofline.kernels import sweep

    # one layer of 2e12 FLOP + 1e9 B per unit of the one basis term, on a device of
    # 1e15 FLOP/s and 1e12 B/s: compute 2 ms vs memory 1 ms per unit -> compute-bound
    out = sweep([[2e12]], [[[1e9]]], [[[5.0]]], [[1.0], [3.0]], [0, 0], [[1e15]], [1e12])
    np.testing.assert_allclose(out.time_s[:, 0], [2e-3, 6e-3])
    np.testing.assert_array_equal(out.memory_share[:, 0], [0.0, 0.0])
    np.testing.assert_allclose(out.working_bytes, [5.0, 15.0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({1: np.ones((2, 9, 5))}, "bytes"),
        ({3: np.ones((23, 5))}, "basis has 5 terms"),
        ({4: np.full(23, 2)}, "dtype_index"),
        ({5: np.ones((2, 3))}, "peak: expected shape"),
        ({6: np.zeros(4)}, "must be > 0"),
        ({0: np.full((9, 6), np.inf)}, "finite"),
    ],
)
def test_sweep_kernel_checks_its_inputs(change, message):
    from roofline.kernels import sweep

    args = list(_random_sweep(0))
    for i, value in change.items():
        args[i] = value
    with pytest.raises(ValueError, match=message):
        sweep(*args)


@pytest.mark.parametrize(
    ("key", "run_kwargs", "tensor"),
    [
        ("bert-large", {"batch": 3, "seq": 200}, 1),
        ("llama-2-7b", {"batch": 5, "phase": "decode", "context": 777}, 2),
        ("resnet-50", {"batch": 7, "phase": "training"}, 1),
        ("elmo", {"batch": 2, "seq": 30, "phase": "training"}, 1),
        ("llama-2-7b", {"batch": 2, "seq": 512, "phase": "training", "attention": "flash"}, 2),
        ("llama-2-7b", {"batch": 2, "seq": 700, "attention": "flash"}, 1),
    ],
)
def test_sweep_expected_kernel_equals_the_per_run_model(key, run_kwargs, tensor):
    """The numba expected-time kernel and efficiency.expected_times (the per-run path) agree
    on real layer tables (K = 1 basis term: the coefficients are the values themselves)."""
    from dataclasses import replace

    from roofline import RunConfig, get_device, get_workload
    from roofline.efficiency import (
        MIN_TILE,
        SPLIT_K_MIN,
        attention_factor,
        expected_times,
        kernels,
    )
    from roofline.hardware import ceilings
    from roofline.kernels import Expectation, sweep, sweep_expected
    from roofline.layers import fused_attention

    run = RunConfig(**run_kwargs)
    t = get_workload(key).layers(run)
    devices = [get_device(d) for d in ("a100", "h100", "mi300x")]
    cs = [ceilings(d, "fp16") for d in devices]
    # the third with a cache tier and a transcendental rate (as a measured CPU file has),
    # chosen so that both bind on some rows: 64 MiB at 9 TB/s, 2e11 evaluations a second
    cs[2] = replace(
        cs[2], cache_bytes=64 * 2**20, cache_bandwidth_bytes_per_s=9e12, transcendentals_per_s=2e11
    )
    # and the second a measured GEMM curve by the smallest dimension (replaces tile q)
    cs[1] = replace(cs[1], gemm_curve=((1, 2e12), (64, 1e14), (1024, 5e14)))
    shape = np.stack([t.gemm_groups, t.gemm_m, t.gemm_n, t.gemm_k])[:, :, None]
    expectation = Expectation(
        shape=shape,
        kernel_counts=kernels(t, run.training)[:, None],
        keep=np.ones(len(t), dtype=bool),
        ceiling_flops=np.array([[c.flops_per_s for c in cs]]),
        ceiling_bandwidth=[c.bandwidth_bytes_per_s for c in cs],
        units=[c.compute_units for c in cs],
        tile_m=[c.tile_m for c in cs],
        tile_n=[c.tile_n for c in cs],
        overhead_s=[c.kernel_overhead_s for c in cs],
        tensor=tensor,
        split_k_min=SPLIT_K_MIN,
        min_tile=MIN_TILE,
        transcendentals=(t.transcendentals * t.count)[:, None],
        instance_bytes=t.bytes[None, :, None],
        cacheable=t.weight_bytes == 0,
        transcendental_rate=[c.transcendentals_per_s or 0.0 for c in cs],
        cache_bytes=[c.cache_bytes or 0.0 for c in cs],
        cache_bandwidth=[c.cache_bandwidth_bytes_per_s or 0.0 for c in cs],
        curve_x=[[0, 0, 0], np.log([1, 64, 1024]), [0, 0, 0]],
        curve_y=[[[0, 0, 0], [2e12, 1e14, 5e14], [0, 0, 0]]],
        curve_n=[0, 3, 0],
        # A100 and H100 measure a fused attention kernel (FlashAttention-2); MI300X not: 0
        attention_layers=fused_attention(t.name),
        attention_share=attention_factor(
            [[(c.attention_flops_per_s or 0.0) / c.flops_per_s for c in cs]], run.training
        ),
    )
    coef = (t.total_flops[:, None], t.total_bytes[None, :, None])
    basis1, dt0 = np.ones((1, 1)), np.zeros(1, dtype=np.int64)
    out = sweep_expected(*coef, basis1, dt0, expectation)
    # the same numbers from the one-pass kernel that also gives the bound
    peak = np.array([[d.peak("fp16") for d in devices]])
    bw = [d.memory_bandwidth_bytes_per_s for d in devices]
    both = sweep(*coef, t.total_bytes[None, :, None], basis1, dt0, peak, bw, expectation)
    np.testing.assert_array_equal(both.expected_s, out)
    # the per-run path (efficiency.expected_times) runs the kernel's own scalar helpers:
    # the same numbers to the last bit (summed in the kernel's order, layer by layer)
    f, y, zero = t.total_flops, t.total_bytes, np.zeros(len(t))
    for j, c in enumerate(cs):
        e = expected_times(t, f, y, zero, c, run.training, tensor=tensor)
        assert out[0, j] == sum(e.time_s.tolist())
    # the extra terms did act on the third device (else this test would not test them)
    e = expected_times(t, f, y, zero, cs[2], run.training, tensor=tensor)
    assert e.losses["cache"].sum() < 0
    assert e.losses["transcendentals"].sum() > 0 or not t.transcendentals.any()  # ReLU CNN
    # a fused attention row on the A100 loses time to its kernel's ceiling, on MI300X none
    fused = fused_attention(t.name).any()
    a100 = expected_times(t, f, y, zero, cs[0], run.training, tensor=tensor)
    assert (a100.losses["attention kernel"].sum() > 0) == fused
    assert e.losses["attention kernel"].sum() == 0


# --- one run's expected time runs the scalar helpers as plain Python, a sweep's grid runs
# them compiled (issue 32: a run does not load numba): the two must agree to the last bit

SIZES = [0.0, 0.5, 1.0, 1.5, 3.0, 15.0, 16.0, 17.0, 100.0, 129.0, 255.0, 256.0, 4097.0, 3.3e7]


def test_plain_helpers_match_the_compiled_ones_on_a_grid():
    import itertools

    import roofline._compiled as compiled
    import roofline._numba_kernels as plain

    for size, low, high in itertools.product(SIZES, [1.0, 16.0], [64.0, 128.0, 256.0]):
        assert plain.tile_side(size, low, high) == compiled.tile_side(size, low, high)
    for m, n, k, want_log in itertools.product(SIZES, SIZES, SIZES, [False, True]):
        args = (m, n, k, 256.0, want_log)
        assert plain.gemm_dims(*args) == compiled.gemm_dims(*args), args
    units = [1.0, 7.0, 108.0, 132.0, 304.0]
    for g, m, n, u in itertools.product([1.0, 3.0, 96.0], SIZES[2:], SIZES[2:], units):
        tiles, pad = plain.gemm_tiles(g, m, n, 128.0, 256.0, 16.0)
        assert (tiles, pad) == compiled.gemm_tiles(g, m, n, 128.0, 256.0, 16.0)
        for k_split in (0.0, 1.0, 4.0, 130.0):
            args = (tiles, pad, k_split, u)
            assert plain.gemm_waves(*args) == compiled.gemm_waves(*args), args
    xs, ys = np.log([1.0, 64.0, 512.0, 4096.0]), np.array([1e9, 3e11, 9e11, 1.2e12])
    for x in [-1.0, 0.0, 2.0, 4.1588, 6.0, 8.3, 9.0, 20.0]:
        for n_points in (1, 2, 4):
            assert plain.curve_at(x, xs, ys, n_points) == compiled.curve_at(x, xs, ys, n_points)
    rng = np.random.default_rng(32)
    for _ in range(2000):
        f, y, te, inst, cache = 10 ** rng.uniform(0, 15, 5)
        nk, q = float(rng.integers(0, 200)), rng.uniform(0.01, 1.0)
        inv, w, rate, o = 1 / 10 ** rng.uniform(9, 16), *10 ** rng.uniform(8, 13, 2), 4e-6
        for r in (0.0, rate):
            args = (f, y, te, nk, inv, q, w, r, o)
            assert plain.layer_time(*args) == compiled.layer_time(*args), args
        for cacheable in (False, True):
            args = (w, cacheable, inst, cache, w * rng.uniform(0.5, 4))
            assert plain.stream_bandwidth(*args) == compiled.stream_bandwidth(*args)


def _expectation(rng: np.random.Generator, n: int, curve: bool, cpu: bool):
    from roofline.kernels import Expectation

    gemm = rng.random(n) < 0.6
    shape = np.where(gemm, rng.integers(1, 64, (4, n)) ** rng.uniform(1, 2.5, (4, n)), 0.0)
    shape[0] = np.where(gemm, rng.integers(1, 40, n), 0)
    return Expectation(
        shape=shape[..., None],
        kernel_counts=rng.integers(1, 100, n)[:, None].astype(float),
        keep=None,
        ceiling_flops=[[10 ** rng.uniform(11, 15)]],
        ceiling_bandwidth=[10 ** rng.uniform(10, 12.5)],
        units=[float(rng.integers(1, 200))],
        tile_m=[128.0],
        tile_n=[float(rng.choice([64, 128, 256]))],
        overhead_s=[rng.uniform(0, 1e-5)],
        tensor=float(rng.choice([1, 2, 8])),
        split_k_min=256.0,
        min_tile=16.0,
        transcendentals=(10 ** rng.uniform(0, 9, n))[:, None],
        instance_bytes=(10 ** rng.uniform(3, 9, n))[None, :, None],
        cacheable=rng.random(n) < 0.5,
        curve_x=[np.log([8.0, 64.0, 512.0, 8192.0])] if curve else None,
        curve_y=[[[1e10, 2e11, 8e11, 1e12]]] if curve else None,
        curve_n=[4 if curve else 0],
        transcendental_rate=[10 ** rng.uniform(8, 10) if cpu else 0.0],
        cache_bytes=[10 ** rng.uniform(5, 8) if cpu else 0.0],
        cache_bandwidth=[10 ** rng.uniform(11, 12) if cpu else 0.0],
        attention_layers=rng.random(n) < 0.2,
        attention_share=[[rng.uniform(0.3, 1.0)]],
    )


@pytest.mark.parametrize("seed", range(6))
def test_plain_ladder_matches_the_compiled_one_and_the_grid(seed):
    import roofline._compiled as compiled
    from roofline._kernel_inputs import expectation
    from roofline.kernels import LADDER, expected_ladder, sweep_expected

    rng = np.random.default_rng(seed)
    n = 40
    e = _expectation(rng, n, curve=seed % 2 == 1, cpu=seed >= 3)
    flops, nbytes = 10 ** rng.uniform(3, 14, n), 10 ** rng.uniform(3, 11, n)
    plain = expected_ladder(flops, nbytes, e)
    f, y = flops.reshape(-1, 1), nbytes.reshape(1, -1, 1)
    bundles = expectation(e, f, y, np.zeros(1, np.int64), y, None)
    fast = np.empty((len(LADDER), n))
    compiled.ladder(*bundles, np.ones((1, 1)), 0, 0, 0, fast)
    np.testing.assert_array_equal(plain, fast)
    # the grid kernel (a sweep) sums the same per-layer times in layer order
    grid = sweep_expected(f, y, np.ones((1, 1)), np.zeros(1, np.int64), e)
    assert grid[0, 0] == sum(plain[-1].tolist())


@pytest.mark.parametrize("seed", range(4))
def test_small_sweeps_run_plain_and_agree_with_the_compiled_grid(seed, monkeypatch):
    import roofline.kernels as kernels

    rng = np.random.default_rng(100 + seed)
    n, s = 30, 12
    e = _expectation(rng, n, curve=seed % 2 == 1, cpu=seed >= 2)
    f = (10 ** rng.uniform(3, 14, n))[:, None]
    y = (10 ** rng.uniform(3, 11, n))[None, :, None]
    io = y * rng.uniform(0.1, 1.0, y.shape)
    basis, k = rng.uniform(0.5, 64, (s, 1)), np.zeros(s, np.int64)
    peak, bw = [[10 ** rng.uniform(12, 15)]], [10 ** rng.uniform(11, 12.5)]
    runs = {}
    for name, threshold in (("plain", 10**18), ("compiled", 0)):
        monkeypatch.setattr(kernels, "AUTO_GRID_MIN_EVALUATIONS", threshold)
        out = kernels.sweep(f, y, io, basis, k, peak, bw, expected=e)
        runs[name] = (out, kernels.sweep_expected(f, y, basis, k, e))
    (plain, plain_e), (fast, fast_e) = runs["plain"], runs["compiled"]
    for field in ("time_s", "memory_share", "flops", "working_bytes", "expected_s"):
        np.testing.assert_array_equal(getattr(plain, field), getattr(fast, field))
    np.testing.assert_array_equal(plain_e, fast_e)


@pytest.mark.parametrize("engine", ENGINES)
def test_evaluate_into_caller_buffers_is_bit_identical(engine):
    from roofline.kernels import RooflineArrays, roofline_buffers

    out = roofline_buffers(503, 37)
    for seed in range(3):  # one set of buffers, reused: each call overwrites all of it
        f, b, p, w = _random_problem(seed, 503, 37)
        fresh = evaluate(f, b, p, w, engine=engine)
        into = evaluate(f, b, p, w, engine=engine, out=out)
        assert into is out
        for name in RooflineArrays.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(into, name), getattr(fresh, name))
            assert getattr(into, name).dtype == getattr(fresh, name).dtype


def test_evaluate_checks_the_caller_buffers():
    from dataclasses import replace

    from roofline.kernels import roofline_buffers

    f, b, p, w = _random_problem(0, 20, 3)
    good = roofline_buffers(20, 3)
    bad = {
        "out.time_s: expected float64 \\(20, 3\\)": replace(good, time_s=np.empty((3, 20))),
        "out.compute_bound: expected bool": replace(good, compute_bound=np.empty((20, 3))),
        "out.ridge: expected float64 \\(3,\\)": replace(good, ridge=np.empty(4)),
        "C-contiguous": replace(good, time_s=np.empty((3, 20)).T),
        "share memory": replace(good, time_s=good.attainable_flops_per_s),
        "expected RooflineArrays": (1, 2),
    }
    for message, out in bad.items():
        for engine in ENGINES:
            with pytest.raises(ValueError, match=message):
                evaluate(f, b, p, w, engine=engine, out=out)
    with pytest.raises(ValueError, match=r"out\.time_s: expected float64"):
        evaluate(f, b, p, w, out=replace(good, time_s=np.empty((20, 3), np.float32)))


def test_sweep_into_caller_buffers_is_bit_identical():
    from dataclasses import replace

    from roofline.kernels import sweep, sweep_buffers

    args = _random_sweep(1)
    fresh = sweep(*args)
    out = sweep_buffers(23, 4, expected=False)
    into = sweep(*args, out=out)
    for name in ("time_s", "memory_share", "flops", "working_bytes"):
        assert getattr(into, name) is getattr(out, name)
        np.testing.assert_array_equal(getattr(into, name), getattr(fresh, name))
    assert into.expected_s is None
    with pytest.raises(ValueError, match=r"out\.flops: expected float64 \(23,\)"):
        sweep(*args, out=replace(out, flops=np.empty(22)))


@pytest.mark.parametrize(
    "run_kwargs",
    [
        {"phase": "prefill"},
        {"phase": "decode"},
        {"phase": "training", "recompute": "full"},
        {"phase": "training", "recompute": "selective", "micro_batch": 2, "batch": 16},
    ],
)
def test_chunked_sweep_with_reused_buffers_equals_the_whole_grid(run_kwargs):
    """The chunk loop's kernels write into one set of buffers: chunked (the last chunk
    short) and kept, or reduced, equal the whole grid in one chunk to the last bit, and a
    reducer may keep what it is given."""
    from roofline import RunConfig, get_device, get_workload
    from roofline.sweep import SweepOutput, evaluate_grid
    from roofline.whatif import build_sweep

    sweep = build_sweep(
        get_workload("gpt2"),
        [get_device("a100"), get_device("h100")],
        RunConfig(**run_kwargs),
        batches=[2, 4, 8, 16],
        seqs=[128, 256, 512],
        contexts=[None],
        dtypes=["fp16", "bf16"],
        replicas=[1],
    )
    whole = evaluate_grid(sweep.model, sweep.grid, chunk=1 << 20)
    kept = evaluate_grid(sweep.model, sweep.grid, chunk=5)
    parts: list[tuple[int, SweepOutput]] = []
    evaluate_grid(
        sweep.model, sweep.grid, chunk=5, keep=False, reduce=lambda s, o: parts.append((s, o))
    )
    assert len(parts) == 5  # 24 scenarios in chunks of 5
    fields = SweepOutput.__dataclass_fields__
    for name in fields:
        np.testing.assert_array_equal(getattr(kept, name), getattr(whole, name))
        joined = np.concatenate([getattr(o, name) for _, o in parts])
        np.testing.assert_array_equal(joined, getattr(whole, name))
    assert np.all(np.isfinite(whole.expected_time_s))
