"""Roofline and memory-wall charts: files open as images and the figures hold the right data;
growth rates against a least-squares fit written out here."""

from __future__ import annotations

import json
import math
from types import MappingProxyType

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from typer.testing import CliRunner

from roofline import RunConfig, analyze, get_device, get_workload, list_devices
from roofline.cli import app
from roofline.hardware import Device
from roofline.memwall import generations, rates
from roofline.plot import memory_wall, model_sizes, roofline, training_compute, training_memory


def _device(
    key: str, release: str, peak: float, bw: float, cap: float, link: float | None
) -> Device:
    return Device(
        key=key,
        name=key,
        vendor="test",
        release=release,
        peak_flops_per_s=MappingProxyType({"fp16": peak}),
        memory_capacity_bytes=cap,
        memory_bandwidth_bytes_per_s=bw,
        memory_type="HBM",
        onchip_cache_bytes=None,
        interconnect_bandwidth_bytes_per_s=link,
        interconnect_counting="bidirectional",
        interconnect_type="link",
        tdp_w=None,
        source="hand-made for the tests",
    )


def _least_squares_growth(years: list[float], values: list[float]) -> float:
    """Growth per two years from the textbook formula: slope = Sxy / Sxx on ln(values)."""
    logs = [math.log(v) for v in values]
    mx, my = sum(years) / len(years), sum(logs) / len(logs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(years, logs))
    sxx = sum((x - mx) ** 2 for x in years)
    return math.exp(2 * sxy / sxx)


def test_growth_rates_against_an_independent_fit():
    # peaks x4 every 2 years exactly, bandwidth x2, capacity noisy, link on two devices only
    devices = [
        _device("d2010", "2010-01-01", 1e12, 1e11, 4e9, None),
        _device("d2012", "2012-01-01", 4e12, 2e11, 9e9, 1e10),
        _device("d2014", "2014-01-01", 16e12, 4e11, 12e9, 3e10),
        _device("d2016", "2016-07-01", 64e12 * 1.2, 8e11, 40e9, None),
    ]
    got = rates(devices)
    years = [d.release_year for d in devices]
    assert got["peak_flops"].growth_per_2y == pytest.approx(
        _least_squares_growth(years, [1e12, 4e12, 16e12, 76.8e12]), rel=1e-12
    )
    assert got["dram_bandwidth"].growth_per_2y == pytest.approx(
        _least_squares_growth(years, [1e11, 2e11, 4e11, 8e11]), rel=1e-12
    )
    assert got["memory_capacity"].growth_per_2y == pytest.approx(
        _least_squares_growth(years, [4e9, 9e9, 12e9, 40e9]), rel=1e-12
    )
    assert got["interconnect_bandwidth"].points == 2  # devices without a link left out
    assert got["interconnect_bandwidth"].growth_per_2y == pytest.approx(
        3.0, rel=1e-3
    )  # 1e10 -> 3e10


def test_database_rates_near_the_papers():
    got = rates(list_devices())
    # the paper: 3.0x, 1.6x, 1.4x, 2x per two years; this database gives 2.7, 1.55, 1.44, 1.7
    assert 2.2 < got["peak_flops"].growth_per_2y < 3.5
    assert 1.3 < got["dram_bandwidth"].growth_per_2y < 1.8
    assert 1.2 < got["interconnect_bandwidth"].growth_per_2y < 1.7
    assert got["peak_flops"].growth_per_2y > got["dram_bandwidth"].growth_per_2y


def test_generations_by_hand():
    # device b: 2x the peak and 2x the bandwidth of a, so everything runs exactly 2x faster
    a = _device("a", "2016-01", 100e12, 1e12, 16e9, None)
    b = _device("b", "2018-01", 200e12, 2e12, 32e9, None)
    c = _device("c", "2020-01", 800e12, 2e12, 32e9, None)  # 8x the peak, same bandwidth as b
    gens = generations(get_workload("bert-large"), [c, b, a], RunConfig(batch=1, seq=512))
    assert [g.device.key for g in gens] == ["a", "b", "c"]
    assert gens[0].speedup == 1.0
    assert gens[1].speedup == pytest.approx(2.0)
    assert gens[1].speedup_if_bandwidth_kept_pace == pytest.approx(2.0)
    # c: had bandwidth grown 8x like the peak, the whole workload would run 8x faster
    assert gens[2].speedup_if_bandwidth_kept_pace == pytest.approx(8.0)
    assert gens[2].speedup < 8.0
    assert gens[2].ridge_point == pytest.approx(400.0)
    # the chart: a bar per device from its speedup to its kept-pace speedup (c's runs to 8x),
    # each device named
    from roofline.plot import generations as generations_chart

    ax = generations_chart(gens).axes[0]
    bars = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert len(bars) == 3
    assert list(bars[2]) == pytest.approx([gens[2].speedup, 8.0])
    assert {t.get_text() for t in ax.texts} == {"a", "b", "c"}


def _results():
    run = RunConfig(batch=1, seq=512)
    return [analyze("bert-large", hw, run) for hw in ("a100", "h100", "mi300x")]


def test_roofline_figure_holds_the_data():
    results = _results()
    fig = roofline(results, top=4)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    roofs = [line for line in ax.get_lines() if line.get_label().startswith(("NVIDIA", "AMD"))]
    assert len(roofs) == 3  # one roof per device
    collections = [c for c in ax.collections if isinstance(c, PathCollection)]
    points = [c for c in collections if len(c.get_offsets()) == len(results[0].layers)]
    assert len(points) == 3  # every layer, on each device
    # and each device's whole step: at (overall intensity, FLOPs / bound time) and
    # (overall intensity, FLOPs / expected time), in TFLOP/s
    stars = [c.get_offsets()[0] for c in collections if len(c.get_offsets()) == 1]
    assert len(stars) == 6
    for r, (bound, expected) in zip(results, zip(stars[::2], stars[1::2])):
        assert bound[0] == pytest.approx(r.intensity_overall)
        assert bound[1] == pytest.approx(r.total_flops / r.total_time_s / 1e12)
        assert expected[1] == pytest.approx(r.total_flops / r.total_expected_time_s / 1e12)
    labels = [t.get_text() for t in ax.texts]
    assert sum(t.startswith("ridge ") for t in labels) == 3
    assert any(t.startswith("block.ffn_up") for t in labels)
    # the top 4 layers named, layers drawn at one spot in one label, a line each
    named = [line for t in labels for line in t.split("\n")]
    assert len([t for t in named if t.startswith(("block.", "embeddings", "pooler"))]) == 4
    assert "FLOP/byte" in ax.get_xlabel() and "TFLOP/s" in ax.get_ylabel()
    # the A100 roof: min(312e12, I x 2039e9) in TFLOP/s
    x, y = roofs[0].get_data()
    assert y[-1] == pytest.approx(312.0) and y[0] == pytest.approx(x[0] * 2.039)
    # the x-axis is fitted to the data: it ends at 16x the largest ridge (room for the
    # ceilings' labels on the flat roof) or 3x the most intense layer, whichever is further;
    # the A100's ridge is 312e12 / 2039e9 = 153 FLOP/B
    ridge = max(r.ridge_point for r in results)
    assert results[0].ridge_point == pytest.approx(312e12 / 2039e9)
    most = max(float(r.intensity.max()) for r in results)
    assert ax.get_xlim()[1] == pytest.approx(max(16 * ridge, 3 * most))
    dtypes = roofline(results[:1], all_dtypes=True)
    assert len(dtypes.axes[0].get_lines()) > len(roofline(results[:1]).axes[0].get_lines())


def test_measured_ceilings_drawn_under_the_datasheet_roof():
    # hardware/a100.yaml measures bf16 GEMM at 271.2 TFLOP/s (mamf-finder): 271.2 / 312 =
    # 86.9 % of the dense peak; its bandwidth is not measured, and fp16 runs on the same
    # tensor-core path at the same peak, so it draws the same measured roof
    bf16 = roofline([analyze("bert-large", "a100", RunConfig(batch=8, seq=512, dtype="bf16"))])
    ax = bf16.axes[0]
    dashdot = [line for line in ax.get_lines() if line.get_linestyle() == "-."]
    assert len(dashdot) == 1
    x, y = dashdot[0].get_data()
    assert y[-1] == pytest.approx(271.2) and y[0] == pytest.approx(x[0] * 2.039)
    notes = [t.get_text() for t in ax.texts if t.get_text().startswith("measured")]
    assert notes == ["measured: GEMM 271 TFLOP/s (87%)"]
    fp16 = roofline([analyze("bert-large", "a100", RunConfig(batch=8, seq=512, dtype="fp16"))])
    drawn = [line for line in fp16.axes[0].get_lines() if line.get_linestyle() == "-."]
    assert len(drawn) == 1 and drawn[0].get_data()[1][-1] == pytest.approx(271.2)
    # fp32 is measured neither way: no measured roof
    fp32 = roofline([analyze("bert-large", "a100", RunConfig(batch=8, seq=512, dtype="fp32"))])
    assert not [line for line in fp32.axes[0].get_lines() if line.get_linestyle() == "-."]


def test_decode_roofline_title_names_the_context():
    r = analyze(
        "llama-2-7b", "a100", RunConfig(batch=1, phase="decode", context=4096, dtype="fp16")
    )
    title = roofline([r]).axes[0].get_title()
    assert "context 4096" in title and "seq" not in title


def test_memory_wall_figures():
    from roofline.workloads import list_workloads

    devices = list_devices()
    fig = memory_wall(devices)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    rates_, starts = legend[:4], legend[4:]
    assert all("x / 2 yrs" in t and "paper" in t for t in rates_)
    assert starts == ["each series' first device (= 1)"]  # the shared start drawn once
    assert len(ax.collections) == 5  # one point series each, and the starts
    # every series' outliers named (over twice the typical distance from its line): the
    # RTX 5090's FLOP/s, TPU v3's interconnect, the L4 in FLOP/s and in bandwidth
    names = [t.get_text() for t in ax.texts]
    assert {"rtx-5090", "tpu-v3", "gtx-580"} <= set(names) and names.count("l4") == 2
    # model sizes: the accelerators' squares have a legend entry
    sizes = model_sizes(list(list_workloads()), devices).axes[0]
    assert any(t.get_text().startswith("accelerator:") for t in sizes.get_legend().get_texts())
    workloads = [
        get_workload(k)
        for k in (
            "transformer",
            "gpt-1",
            "bert-large",
            "gpt-2",
            "gpt-3",
            "alexnet",
            "vgg-19",
            "resnet152",
            "densenet201",
            "resnext101-64x4d",
            "transformer-big",
        )
    ]
    assert model_sizes(workloads, devices).axes[0].get_yscale() == "log"
    assert len(training_compute(workloads).axes[0].get_lines()) == 2  # transformers, CNNs
    bars = training_memory(workloads, devices).axes[0]
    assert len(bars.patches) == 3 * 8  # params, optimizer, activations for the 8 table rows


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_plot_cli_writes_images(tmp_path, suffix):
    out = tmp_path / f"roof{suffix}"
    res = CliRunner().invoke(app, ["plot", "-m", "bert-large", "--hw", "a100,h100", "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = out.read_bytes()
    if suffix == ".png":
        import matplotlib.image

        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(str(out)).shape[2] in (3, 4)
    elif suffix == ".svg":
        assert b"<svg" in data[:500]
    else:
        assert data[:5] == b"%PDF-"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_plot_cli_errors():
    res = CliRunner().invoke(app, ["plot", "-m", "bert-large", "--hw", "a100", "-o", "x.gif"])
    assert res.exit_code == 2 and "must end in .png, .svg, .pdf" in res.stderr
    res = CliRunner().invoke(app, ["plot", "-m", "bert-large", "--hw", "a1OO", "-o", "x.png"])
    assert res.exit_code == 2 and "did you mean" in res.stderr


def test_memwall_cli(tmp_path):
    res = CliRunner().invoke(app, ["memwall", "-f", "json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert set(data["rates"]) == {
        "peak_flops",
        "dram_bandwidth",
        "interconnect_bandwidth",
        "memory_capacity",
    }
    assert data["paper_rates"]["peak_flops"] == 3.0
    for figure in ("scaling", "models", "compute", "memory"):
        out = tmp_path / f"{figure}.png"
        res = CliRunner().invoke(app, ["memwall", "--figure", figure, "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert out.read_bytes()[:4] == b"\x89PNG"
    res = CliRunner().invoke(
        app, ["memwall", "-m", "bert-large", "--hw", "v100,a100,h100", "-f", "json"]
    )
    rows = json.loads(res.stdout)
    assert [r["device"] for r in rows] == ["v100", "a100", "h100"]
    assert rows[0]["speedup"] == 1.0
    # A100 vs V100 at fp16: ridge 153 vs 139 FLOP/B
    assert rows[1]["ridge_point"] == pytest.approx(312e12 / 2039e9)


def _overlapping_labels(fig):
    """Pairs of text boxes (labels and annotations, without their leader lines) that
    overlap on the rendered figure."""
    import itertools

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [
        (t.get_text(), Text.get_window_extent(t, renderer))
        for ax in fig.axes
        for t in ax.texts
        if t.get_visible() and t.get_text().strip()
    ]
    return [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.overlaps(y)]


@pytest.mark.slow  # draws charts
def test_chart_labels_do_not_overlap():
    from roofline.plot import generations as generations_chart
    from roofline.workloads import list_workloads

    workloads, devices = list_workloads(), list_devices()
    run = RunConfig(batch=1, seq=128)
    decode = RunConfig(batch=1, phase="decode", context=4096, dtype="fp16")
    figures = {
        "roofline": roofline(_results()),
        "decode": roofline([analyze("llama-2-7b", "a100", decode)]),
        "memory wall": memory_wall(devices),
        "model sizes": model_sizes(workloads, devices),
        "training compute": training_compute(workloads),
        "generations": generations_chart(generations(get_workload("bert-large"), devices, run)),
    }
    # every model, every device has its label
    named = {"model sizes": 20, "training compute": 20, "generations": len(devices)}
    for key, fig in figures.items():
        assert _overlapping_labels(fig) == [], key
        if key in named:
            assert len(fig.axes[0].texts) >= named[key], key


def test_roofline_panels_one_per_device():
    from roofline.plot import roofline_panels

    results = _results()  # A100, H100, MI300X
    fig = roofline_panels(results, top=3)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3 and len(fig.axes) == 4  # two a row: the fourth is hidden
    for ax, r in zip(panels, results):
        roofs = [line for line in ax.get_lines() if line.get_label().startswith(r.device.name)]
        assert len(roofs) == 1
        # each panel labels its own device's top layers, with that device's time shares
        top = int(np.argmax(r.time_s))
        share = f"{r.layers.name[top]} ({100 * r.time_s[top] / r.total_time_s:.0f}%)"
        assert share in [line for t in ax.texts for line in t.get_text().split("\n")]
    assert _overlapping_labels(fig) == []


def test_memwall_paper_set():
    from roofline.memwall import PAPER_DEVICES

    res = CliRunner().invoke(app, ["memwall", "--paper", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    counts = {s["series"]: s["devices"] for s in data["series"]}
    assert counts["peak_flops"] == len(PAPER_DEVICES) == 12
    # the paper's flagship set lands near its headline rates (3.0x FLOP/s, 1.6x DRAM
    # bandwidth every two years): within 10 %
    assert data["rates"]["peak_flops"] == pytest.approx(3.0, rel=0.10)
    assert data["rates"]["dram_bandwidth"] == pytest.approx(1.6, rel=0.10)
    res = CliRunner().invoke(app, ["memwall", "--paper", "--hw", "a100"])
    assert res.exit_code == 2 and "--paper" in res.stderr
    # model sizes over the paper's set name every accelerator in the window, no overlaps
    devices = [get_device(k) for k in PAPER_DEVICES]
    from roofline.workloads import list_workloads

    fig = model_sizes(list_workloads(), devices)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"p100", "v100-32gb", "tpu-v3", "a100-40gb", "a100", "h100"} <= texts
    assert _overlapping_labels(fig) == []


@pytest.mark.parametrize(
    "model, hws, phase",
    [
        ("bert-large", ("a100", "h100"), "inference"),
        ("llama-2-7b", ("a100", "h100", "mi300x", "h200"), "decode"),
    ],
)
def test_whole_step_stars_never_coincide_and_sit_under_the_layers(model, hws, phase):
    """Issue 31: with A100 + H100 the A100's bound star sat exactly under the H100's expected
    one. Every device's stars are shifted sideways by its own offset, so no two star centres
    are within a star's width (15 points) of each other, and they are drawn beneath the layer
    points (a lower zorder), which stay visible and hoverable."""
    import matplotlib

    matplotlib.use("Agg")
    from roofline.analysis import analyze
    from roofline.plot import roofline
    from roofline.scenario import RunConfig

    run = RunConfig(phase=phase, context=2048 if phase == "decode" else None)
    fig = roofline([analyze(model, h, run) for h in hws])
    fig.canvas.draw()
    ax = fig.axes[0]
    stars = [c for c in ax.collections if list(c.get_sizes()) == [220]]
    layers = [c for c in ax.collections if c not in stars]
    assert len(stars) == 2 * len(hws)
    centres = [c.get_offset_transform().transform(c.get_offsets())[0] for c in stars]
    width = 15 * fig.dpi / 72
    for i, a in enumerate(centres):
        for b in centres[i + 1 :]:
            assert ((a - b) ** 2).sum() ** 0.5 >= width * 0.99
    assert max(c.get_zorder() for c in stars) < min(c.get_zorder() for c in layers)
