"""roofline measure: the machine at hand as a device file (structure and sanity, not speed)."""

from __future__ import annotations

import math
import platform

import pytest
from typer.testing import CliRunner

from roofline import RunConfig, analyze
from roofline.cli import app
from roofline.errors import SpecError
from roofline.hardware import ceilings, load_device_file
from roofline.measure import CACHE_SETS, CACHE_SPEEDUP, SKINNY, this_machine


def test_measure_quick_writes_a_device_file_the_tool_can_use(tmp_path):
    path = tmp_path / "here.yaml"
    res = CliRunner().invoke(app, ["measure", "--quick", "-o", str(path)])
    assert res.exit_code == 0, res.output
    assert "measuring GEMM" in res.stderr  # progress on stderr, the file on its own
    d = load_device_file(path)
    assert d.is_measured and d.dtypes == ("fp64", "fp32")
    # the machine measured (for `roofline check`): CPU model, cores, memory, no host name
    here = this_machine()
    assert d.machine is not None and (d.machine.cpu, d.machine.cores) == (here.cpu, here.cores)
    assert d.machine.memory_bytes == pytest.approx(here.memory_bytes, rel=1e-5)
    host = platform.node()
    assert d.compute_units == here.cores and (len(host) < 6 or host not in path.read_text())
    # the block is read strictly, as every field is: no host name, cores a whole number
    text = path.read_text()
    for broken, problem in (
        (text.replace("  cpu: ", "  host: vm\n  cpu: "), "machine.host: unknown field"),
        (text.replace(f"  cores: {here.cores}\n", "  cores: 0\n"), "machine.cores"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(broken)
        with pytest.raises(SpecError, match=problem):
            load_device_file(bad)
    for dtype in d.dtypes:
        peak = d.peak(dtype)
        # positive and finite, and below what any CPU core does (1e12 FLOP/s a core)
        assert math.isfinite(peak) and 1e8 < peak < 1e12 * (d.compute_units or 1)
        c = ceilings(d, dtype)
        assert c.gemm_measured and c.bandwidth_measured and c.flops_per_s == peak
    bw = d.memory_bandwidth_bytes_per_s
    assert 1e8 < bw < 1e12  # a CPU's DRAM: well below a terabyte a second
    c = ceilings(d, "fp32")
    assert 0 < c.kernel_overhead_s < 1e-3
    # exp/tanh on one core: between a million and ten billion a second
    assert c.transcendentals_per_s is not None and 1e6 < c.transcendentals_per_s < 1e10
    # the GEMM curve by the smallest dimension: the skinny rows, then the squares, each rate
    # positive and at most the best (the peak)
    sizes = [p[0] for p in c.gemm_curve]
    assert sizes == sorted(sizes) and set(SKINNY) <= set(sizes)
    assert all(0 < p[1] <= d.peak("fp32") for p in c.gemm_curve)
    if c.cache_bytes is not None:  # a cache tier shows on most machines: one of the sets
        assert c.cache_bytes in CACHE_SETS
        assert bw * CACHE_SPEEDUP <= c.cache_bandwidth_bytes_per_s < 1e13
    # the file works as --hw: fp32 BERT-Base-size work runs on it
    r = analyze("bert-large", d, RunConfig(batch=1, seq=64, dtype="fp32"))
    assert r.total_expected_time_s >= r.total_time_s > 0


def test_measure_refuses_what_it_cannot_measure():
    res = CliRunner().invoke(app, ["measure", "--quick", "--dtype", "bf16"])
    assert res.exit_code == 2 and "--dtype bf16" in res.stderr
    res = CliRunner().invoke(app, ["measure", "--device", "cuda"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
