"""Figures: roofline charts and the memory-wall charts. Each function returns a matplotlib
Figure (built without pyplot: no global state, nothing shown); the caller saves it.

Over 400 lines: every chart of the tool, sharing one style and the finishing helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

from .errors import RooflineError
from .hardware import fractional_year

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation
    from matplotlib.transforms import Bbox

    from .analysis import Result
    from .hardware import Device
    from .memwall import Generation
    from .simulate import SimulationResult
    from .workloads import Workload

KIND_COLORS = {
    "matmul": "#1f77b4",
    "conv": "#17becf",
    "attention": "#ff7f0e",
    "softmax": "#d62728",
    "norm": "#9467bd",
    "activation": "#8c564b",
    "elementwise": "#e377c2",
    "embedding": "#7f7f7f",
    "pool": "#bcbd22",
    "concat": "#2ca02c",
}
DEVICE_STYLES = [
    ("#222222", "o"),
    ("#b8860b", "s"),
    ("#2e8b57", "^"),
    ("#8b008b", "D"),
    ("#4682b4", "v"),
    ("#a0522d", "P"),
]
TFLOP = 1e12
# Growth fits of models stop here, the end of the dataset's window (Gholami et al. plot
# models to 2021); later catalog models are drawn hollow.
FIT_UNTIL = 2021.0


def _figure(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _finish_log_chart(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    """The common finish of the time-series charts: log y axis, labels, grid, legend."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(loc="upper left", fontsize=8)


# Where a point's label may go, in points from the point: the four diagonals, then further
# out; the first place that overlaps no label placed before it, nor the legend, and stays
# inside the axes, wins (a greedy placement: the charts have tens of labels, not thousands).
# points between neighbouring devices' whole-step stars (a star of s=220 is ~15 points wide)
STAR_SHIFT_PT = 16.0
LABEL_PLACES = [
    (dx * d, dy * d) for d in (3, 10, 18, 28) for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1))
]


def _settle(
    note: Annotation,
    places: Sequence[tuple[float, float]],
    taken: list[Bbox],
    frame: Bbox,
    renderer: RendererBase,
    own: tuple[float, float] | None = None,
) -> None:
    """Move `note` to the first of `places` (offsets in points; the sign of each side sets
    the alignment) where its text overlaps nothing in `taken` and stays inside `frame`, or
    else to the least-bad place; its box joins `taken`. A box holding `own`, the point the
    note names, is not an obstacle."""
    from matplotlib.text import Text

    def put(dx: float, dy: float) -> Bbox:
        note.set_position((dx, dy))
        note.set_horizontalalignment("left" if dx > 0 else "right")
        note.set_verticalalignment("bottom" if dy > 0 else "top")
        note.update_positions(renderer)  # an annotation places its text when drawn
        return Text.get_window_extent(note, renderer)

    best, best_cost = places[0], float("inf")
    for dx, dy in places:
        box = put(dx, dy)
        inside = (
            frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 <= box.y1 <= frame.y1
        )
        cost = sum(box.overlaps(o) for o in taken if own is None or not o.contains(*own))
        cost += 0 if inside else 10
        if cost < best_cost:
            best, best_cost = (dx, dy), cost
        if cost == 0:
            break
    taken.append(put(*best))


def _settled_layout(ax: Axes) -> tuple[RendererBase, Bbox, list[Bbox]]:
    """A renderer, the axes' box once the layout is final, and its legends' boxes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.legend import Legend

    fig = cast("Figure", ax.figure)
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    fig.draw_without_rendering()  # settle the layout: the axes' box is final from here
    legends = [a for a in ax.get_children() if isinstance(a, Legend)]
    return (
        renderer,
        ax.get_window_extent(renderer),
        [x.get_window_extent(renderer) for x in legends],
    )


def _name_points(
    ax: Axes, points: Sequence[tuple[float, float, str]], fontsize: int = 7, color: str = "black"
) -> None:
    """Label each (x, y, name) point without two labels overlapping where a place exists;
    a label moved off its point gets a thin leader line. Call after the legend is made."""
    from matplotlib.transforms import Bbox

    renderer, frame, taken = _settled_layout(ax)
    marker = 4 * ax.figure.dpi / 72  # a marker's half-width in pixels: labels keep off markers
    for collection in ax.collections:
        for px, py in collection.get_offset_transform().transform(collection.get_offsets()):
            taken.append(Bbox.from_extents(px - marker, py - marker, px + marker, py + marker))
    for x, y, name in points:
        note = ax.annotate(
            name,
            (x, y),
            xytext=LABEL_PLACES[0],
            textcoords="offset points",
            fontsize=fontsize,
            color=color,
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#777777", "shrinkA": 0},
        )
        own = ax.transData.transform((x, y))
        _settle(note, LABEL_PLACES, taken, frame, renderer, own=(float(own[0]), float(own[1])))


def _short(name: str) -> str:
    """A workload's name for a label: without its parenthesised qualifier."""
    return name.split(" (")[0]


def _measured_roof(ax: Axes, r: Result, x: np.ndarray, hi: float, color: str, index: int) -> bool:
    """The device file's measured ceilings (dash-dot) under the datasheet roof, labelled
    with the share of the datasheet figure they reach; nothing when none is measured or
    they are the datasheet's (a `roofline measure` file has no other)."""
    from .hardware import ceilings

    c = ceilings(r.device, r.run.dtype)
    peak, bw = r.peak_flops_per_s, r.device.memory_bandwidth_bytes_per_s
    pa = c.flops_per_s if c.gemm_measured else peak
    wa = c.bandwidth_bytes_per_s if c.bandwidth_measured else bw
    if pa >= peak * (1 - 1e-9) and wa >= bw * (1 - 1e-9):
        return False
    ax.plot(x, np.minimum(pa, x * wa) / TFLOP, color=color, lw=1.2, ls="-.", alpha=0.9)
    parts = []
    if pa < peak * (1 - 1e-9):
        parts.append(f"GEMM {pa / TFLOP:,.0f} TFLOP/s ({100 * pa / peak:.0f}% of peak)")
    if wa < bw * (1 - 1e-9):
        parts.append(f"{wa / 1e9:,.0f} GB/s ({100 * wa / bw:.0f}%)")
    ax.annotate(
        "measured: " + ", ".join(parts),
        (hi, pa / TFLOP),
        xytext=(-4, -10 - 9 * (index % 3)),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=7,
        color=color,
    )
    return True


def roofline(
    results: Sequence[Result], ax: Axes | None = None, *, all_dtypes: bool = False, top: int = 5
) -> Figure:
    """Log-log roofline of one workload on one or more devices.

    One roof per device (memory slope and compute ceiling for the run's dtype; with
    `all_dtypes`, dashed ceilings for the device's other dtypes; dash-dot, the ceilings
    its file says were measured, with their share of the datasheet's), its ridge point marked,
    every layer a point at (intensity, attainable FLOP/s) on each device, its area
    proportional to its share of the time, its colour its kind; the `top` layers by time on
    the first device are labelled."""
    if not results:
        raise RooflineError("nothing to plot: no results")
    if len(results) > len(DEVICE_STYLES):
        raise RooflineError(f"--hw: at most {len(DEVICE_STYLES)} devices on one roofline chart")
    fig, ax = _figure(ax, (10, 6.5))
    intensity = np.concatenate([r.intensity for r in results])
    positive = intensity[intensity > 0]
    lo = min(0.1, float(positive.min()) / 2) if positive.size else 0.1
    ridges = [r.ridge_point for r in results]
    # fitted to the data: past the last layer, and a decade past the last ridge so the flat
    # roof shows and the ridge labels clear the kind legend at the lower right
    hi = max(float(intensity.max()) * 3, max(ridges) * 10)
    x = np.logspace(np.log10(lo), np.log10(hi), 400)
    device_handles = []
    measured = False
    for index, ((color, marker), r) in enumerate(zip(DEVICE_STYLES, results)):
        peak, bw = r.peak_flops_per_s, r.device.memory_bandwidth_bytes_per_s
        from .report import seconds

        (line,) = ax.plot(
            x,
            np.minimum(peak, x * bw) / TFLOP,
            color=color,
            lw=2,
            label=f"{r.device.name} ({r.run.dtype}: {peak / TFLOP:,.0f} TFLOP/s, "
            f"{bw / 1e9:,.0f} GB/s): step {seconds(r.total_time_s)} bound, "
            f"{seconds(r.total_expected_time_s)} expected (MFU {100 * r.mfu:.2g}%)",
        )
        device_handles.append(line)
        measured |= _measured_roof(ax, r, x, hi, color, index)
        ax.axvline(r.ridge_point, color=color, ls=":", lw=1)
        ax.annotate(
            f"ridge {r.ridge_point:,.0f} FLOP/B",
            (r.ridge_point, 0.02 + 0.22 * (index % 3)),  # staggered: ridges can nearly coincide
            xycoords=("data", "axes fraction"),
            xytext=(-3, 0),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="bottom",
            fontsize=8,
            color=color,
        )
        if all_dtypes:  # other dtypes' ceilings, one label for dtypes that share a peak
            ceilings: dict[float, list[str]] = {}
            for dtype, other in r.device.peak_flops_per_s.items():
                if other != peak:
                    ceilings.setdefault(other, []).append(dtype)
            for other, names in ceilings.items():
                ax.plot(x, np.minimum(other, x * bw) / TFLOP, color=color, lw=1, ls="--", alpha=0.6)
                ax.annotate(
                    "/".join(names),
                    (hi, other / TFLOP),
                    xytext=(-4, 2 + 9 * (index % 3)),
                    textcoords="offset points",
                    ha="right",
                    fontsize=7,
                    color=color,
                )
        # the whole step: at the bound (filled star) and as expected (open star) below it
        ai = r.intensity_overall
        at_bound, expected = (
            r.achieved_flops_per_s / TFLOP,
            r.total_flops / (r.total_expected_time_s * TFLOP),
        )
        # each device's stars shifted sideways by its own few points: one workload has one
        # intensity, so devices whose bound and expected figures meet would hide each other;
        # drawn under the layer points (zorder 2.5 < 3), which stay visible and hoverable
        from matplotlib.transforms import ScaledTranslation

        shift = ax.transData + ScaledTranslation(
            STAR_SHIFT_PT * (index - (len(results) - 1) / 2) / 72, 0, fig.dpi_scale_trans
        )
        ax.plot([ai, ai], [expected, at_bound], color=color, lw=1, zorder=2.4, transform=shift)
        ax.scatter(
            [ai], [at_bound], marker="*", s=220, color=color, edgecolors="black", zorder=2.5,
            transform=shift,
        )  # fmt: skip
        ax.scatter(
            [ai], [expected], marker="*", s=220, facecolors="white", edgecolors=color,
            zorder=2.5, transform=shift,
        )  # fmt: skip
        shares = r.time_s / r.total_time_s
        colors = [KIND_COLORS.get(str(k), "#000000") for k in r.layers.kind]
        xs = np.where(r.intensity > 0, r.intensity, lo)
        ax.scatter(
            xs,
            r.attainable_flops_per_s / TFLOP,
            s=20 + 600 * shares,
            c=colors,
            marker=marker,
            edgecolors=color,
            linewidths=0.8,
            alpha=0.85,
            zorder=3,
        )
    first = results[0]
    order = np.argsort(-first.time_s)[:top]
    middle = np.sqrt(lo * hi)
    layer_notes = []
    for rank, i in enumerate(order):
        xi = first.intensity[i] if first.intensity[i] > 0 else lo
        right = xi > middle  # label towards the middle of the chart, away from the edge
        note = ax.annotate(
            f"{first.layers.name[i]} ({100 * first.time_s[i] / first.total_time_s:.0f}%"
            + (f" of {first.device.key}'s step)" if len(results) > 1 else ")"),
            (xi, first.attainable_flops_per_s[i] / TFLOP),
            xytext=(-14 if right else 12, -60 - 13 * rank),  # below the step's stars
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#555555"},
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.8, "lw": 0},
        )
        layer_notes.append(note)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("Arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("Attainable performance (TFLOP/s, 1e12 FLOP/s)")
    if first.run.phase == "decode":  # one new token a sample, attending to the cached ones
        seq = f", 1 new token, context {first.seq}" if first.seq else ", 1 new token"
    else:
        seq = f", seq {first.seq}" if first.seq else ""
    kinds_of_dtype = list(dict.fromkeys(r.run.dtype for r in results))
    dtype = kinds_of_dtype[0] if len(kinds_of_dtype) == 1 else "each device's 16-bit type"
    ax.set_title(f"{first.workload.name}: {first.run.phase}, batch {first.run.batch}{seq}, {dtype}")
    ax.grid(True, which="both", alpha=0.2)
    from matplotlib.lines import Line2D

    kinds = sorted({str(k) for r in results for k in r.layers.kind})
    kind_handles = [
        Line2D([], [], ls="", marker="o", color=KIND_COLORS.get(k, "#000"), label=k) for k in kinds
    ]
    first_legend = ax.legend(
        handles=device_handles,
        loc="upper left",
        fontsize=8,
        title="device roof (marker = its layers; stars: the whole step at the bound, filled, "
        "and expected, open" + ("; dash-dot: measured ceilings)" if measured else ")"),
        title_fontsize=8,
    )
    for handle, (_, marker) in zip(first_legend.legend_handles, DEVICE_STYLES):
        handle.set_marker(marker)  # type: ignore[union-attr]
    ax.add_artist(first_legend)
    ax.legend(
        handles=kind_handles,
        loc="lower right",
        fontsize=8,
        title="layer kind (area = time share)",
        title_fontsize=8,
    )
    # the layer labels keep off the ridge labels, the legends and each other: each may
    # swap sides of its point or move further out along its row
    renderer, frame, taken = _settled_layout(ax)
    taken += [t.get_window_extent(renderer) for t in ax.texts if t not in layer_notes]
    for note in layer_notes:
        dx, dy = note.get_position()
        places = [(dx, dy), (-dx, dy), (3 * dx, dy), (-3 * dx, dy), (6 * dx, dy), (-6 * dx, dy)]
        _settle(note, places, taken, frame, renderer)
    return fig


def roofline_panels(results: Sequence[Result], *, all_dtypes: bool = False, top: int = 5) -> Figure:
    """Small multiples: one roofline panel per device (two a row), each with its own top
    layers labelled and its step time in its legend, for comparing devices whose points
    would hide each other on one chart."""
    if not results:
        raise RooflineError("nothing to plot: no results")
    from matplotlib.figure import Figure

    cols = min(len(results), 2)
    rows = -(-len(results) // cols)
    fig = Figure(figsize=(10 * cols, 6.5 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(results) :]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, results):
        roofline([r], ax=ax, all_dtypes=all_dtypes, top=top)
    return fig


SERIES_LABELS = {
    "peak_flops": "Peak FLOP/s (16-bit tensor, else fp32)",
    "dram_bandwidth": "DRAM bandwidth",
    "interconnect_bandwidth": "Interconnect bandwidth (per device)",
    "memory_capacity": "Memory capacity",
}
SERIES_COLORS = {
    "peak_flops": "#1f77b4",
    "dram_bandwidth": "#2ca02c",
    "interconnect_bandwidth": "#ff7f0e",
    "memory_capacity": "#9467bd",
}


def memory_wall(devices: Sequence[Device], ax: Axes | None = None, labels: int = 12) -> Figure:
    """Fig. 1 of the paper from the device database: each series normalised to its first
    device, log scale, with its fitted growth line; `labels` devices of the FLOP/s series
    are named (spread over time)."""
    from .memwall import PAPER_RATES, fit_trend, series

    fig, ax = _figure(ax, (10, 6.5))
    data = series(list(devices))
    named: list[tuple[float, float, str]] = []
    named_color = "black"
    for name, (years, values, keys) in data.items():
        if len(years) < 2:
            continue
        trend = fit_trend(years, values)
        norm = values / values[0]
        color = SERIES_COLORS[name]
        ax.scatter(years, norm, color=color, s=22, zorder=3)
        span = np.linspace(years.min(), years.max(), 50)
        ax.plot(
            span,
            trend.at(span) / values[0],
            color=color,
            lw=1.5,
            label=f"{SERIES_LABELS[name]}: {trend.growth_per_2y:.2f}x / 2 yrs "
            f"(paper {PAPER_RATES[name]:.1f}x)",
        )
        if name == "peak_flops":
            pick = np.unique(
                np.linspace(0, len(keys) - 1, min(labels, len(keys))).round().astype(int)
            )
            named = [(float(years[i]), float(norm[i]), str(keys[i])) for i in pick]
            named_color = color
    _finish_log_chart(
        ax,
        "Release date (year)",
        "Scaling relative to the first device of each series",
        "The memory wall in this tool's device database",
    )
    # placed after the legend, clear of each other, the dots and the legend
    _name_points(ax, named, color=named_color)
    return fig


def model_sizes(
    workloads: Sequence[Workload], devices: Sequence[Device], ax: Axes | None = None
) -> Figure:
    """Fig. 2: parameter counts of the catalog's transformers vs the parameters that fit one
    accelerator (capacity / 6 bytes, as the paper draws them), over time, with fits."""
    from .memwall import fit_trend

    fig, ax = _figure(ax, (10, 6))
    models = [
        (w.published.date, w.params, w.name)
        for w in workloads
        if w.family == "transformer" and w.published.date
    ]
    if len(models) < 2:
        raise RooflineError("need at least two dated transformer models")
    years = np.array([fractional_year(d) for d, _, _ in models])
    params = np.array([p for _, p, _ in models])
    window = years < FIT_UNTIL  # the paper's window: the dataset's models, up to 2021
    trend = fit_trend(years[window], params[window])
    ax.scatter(years[window], params[window], color="#1f77b4", zorder=3)
    ax.scatter(
        years[~window],
        params[~window],
        facecolors="none",
        edgecolors="#1f77b4",
        zorder=3,
        label="after 2021 (not in the fit)",
    )
    span = np.linspace(years[window].min(), years[window].max(), 50)
    ax.plot(
        span,
        trend.at(span),
        color="#1f77b4",
        label=f"transformer parameters to 2021: {trend.growth_per_2y:,.0f}x / 2 yrs (paper 410x)",
    )
    accel = sorted(
        (d.release_year, d.memory_capacity_bytes / 6, d.key)
        for d in devices
        if d.release_year >= years.min() - 2  # the paper starts at P100, 2016
    )
    ay = np.array([a[0] for a in accel])
    av = np.array([a[1] for a in accel])
    mem_trend = fit_trend(ay, av)
    ax.scatter(ay, av, color="#d62728", marker="s", zorder=3)
    aspan = np.linspace(ay.min(), ay.max(), 50)
    ax.plot(
        aspan,
        mem_trend.at(aspan),
        color="#d62728",
        label=f"accelerator memory / 6 B a parameter: {mem_trend.growth_per_2y:.2f}x / 2 yrs "
        "(paper 2x)",
    )
    _finish_log_chart(ax, "Date (year)", "Parameters", "Model size vs accelerator memory")
    named = [(y, p, _short(name)) for y, p, (_, _, name) in zip(years, params, models)]
    if len(accel) <= 12:  # a curated set (--paper): every accelerator named too
        named += [(y, v, key) for y, v, key in accel]
    _name_points(ax, named)
    return fig


def training_compute(workloads: Sequence[Workload], ax: Axes | None = None) -> Figure:
    """Fig. 3: training FLOPs of the catalog's models (computed from their published
    training setups) over time, transformers and CNNs fitted separately."""
    from .memwall import fit_trend

    fig, ax = _figure(ax, (10, 6))
    groups = {
        "transformer": ("#1f77b4", "transformers", "paper 750x"),
        "cnn": ("#2ca02c", "CNNs", ""),
    }
    any_points = False
    named: list[tuple[float, float, str]] = []
    for family, (color, label, paper) in groups.items():
        rows = [
            (w.published.date, w.training_flops(), w.name)
            for w in workloads
            if w.family == family and w.published.date and w.training is not None
        ]
        if len(rows) < 2:
            continue
        any_points = True
        years = np.array([fractional_year(d) for d, _, _ in rows])
        flops = np.array([f for _, f, _ in rows]) / 1e15
        window = years < FIT_UNTIL
        ax.scatter(years[window], flops[window], color=color, zorder=3)
        ax.scatter(years[~window], flops[~window], facecolors="none", edgecolors=color, zorder=3)
        named.extend((y, f, _short(name)) for y, f, (_, _, name) in zip(years, flops, rows))
        trend = fit_trend(years[window], flops[window])
        span = np.linspace(years[window].min(), years[window].max(), 50)
        ax.plot(
            span,
            trend.at(span),
            color=color,
            label=f"{label} to 2021: {trend.growth_per_2y:,.0f}x / 2 yrs"
            + (f" ({paper})" if paper else ""),
        )
    if not any_points:
        raise RooflineError("no models with training setups to plot")
    _finish_log_chart(
        ax,
        "Date (year)",
        "Training compute (PFLOP, 1e15 FLOP)",
        "Training compute of the catalog's models (from their training setups; "
        "hollow: after 2021, not fitted)",
    )
    _name_points(ax, named)
    return fig


def training_memory(
    workloads: Sequence[Workload], devices: Sequence[Device], ax: Axes | None = None
) -> Figure:
    """Fig. 4: the training memory table's models as stacked bars (parameters, optimizer,
    activations; computed under the table's conventions) against the largest GPU memory
    available when each model appeared."""
    from .validate import reproduce_memory_row

    fig, ax = _figure(ax, (10, 6))
    rows = [w for w in workloads if w.published.training_memory is not None]
    if not rows:
        raise RooflineError("no models with a training memory row")
    rows.sort(key=lambda w: w.published.date or "")
    names, parts = [], []
    for w in rows:
        computed, _ = reproduce_memory_row(w, w.published.training_memory)  # type: ignore[arg-type]
        names.append(w.name)
        parts.append([computed["params"], computed["optimizer"], computed["activations"]])
    values = np.array(parts) / 1e9
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for k, (label, color) in enumerate(
        (("parameters", "#1f77b4"), ("optimizer state", "#ff7f0e"), ("activations", "#2ca02c"))
    ):
        ax.bar(x, values[:, k], bottom=bottom, color=color, label=label)
        bottom += values[:, k]
    gpus = [d for d in devices if d.vendor == "NVIDIA"]
    limit = []
    for w in rows:
        year = fractional_year(w.published.date or "2000-01")
        available = [d.memory_capacity_bytes for d in gpus if d.release_year <= year + 0.5]
        limit.append(max(available) / 1e9 if available else np.nan)
    ax.step(
        np.r_[x - 0.5, x[-1] + 0.5],
        np.r_[limit, limit[-1]],
        where="post",
        color="#d62728",
        lw=2,
        label="largest NVIDIA GPU memory at the time (device database)",
    )
    ax.set_xticks(
        x, [f"{n}\n{(w.published.date or '')[:4]}" for n, w in zip(names, rows)], fontsize=8
    )
    ax.set_ylabel("Training memory (GB, 1e9 bytes)")
    ax.set_title("Training memory (fp32 weights; optimizer 1x CV, 2x NLP) vs GPU memory")
    ax.grid(True, axis="y", alpha=0.2)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def generations(
    gens: Sequence[Generation], ax: Axes | None = None, name: str = "one workload"
) -> Figure:
    """Speedup of one workload over the oldest device, as it is and as it would be had memory
    bandwidth grown as fast as peak FLOP/s: a dumbbell per device, so the gap (the memory
    wall) is the length of its bar."""
    fig, ax = _figure(ax, (10, 6))
    years = np.array([g.device.release_year for g in gens])
    real = np.array([g.speedup for g in gens])
    ideal = np.array([g.speedup_if_bandwidth_kept_pace for g in gens])
    for y, r, i in zip(years, real, ideal):
        ax.plot([y, y], [r, i], color="#999999", lw=1.5, zorder=2)
    ax.scatter(
        years,
        ideal,
        color="#2ca02c",
        marker="^",
        zorder=3,
        label="if DRAM bandwidth had kept pace with FLOP/s",
    )
    ax.scatter(years, real, color="#1f77b4", zorder=3, label="estimated speedup (the bar: the gap)")
    _finish_log_chart(
        ax,
        "Release date (year)",
        f"Speedup over {gens[0].device.key}",
        f"The memory wall for {name}",
    )
    _name_points(ax, [(y, r, g.device.key) for g, y, r in zip(gens, years, real)])
    return fig


def simulation(result: SimulationResult, title: str) -> Figure:
    """A serving simulation over time, from its iteration log: the requests running and
    waiting (top) and the share of the KV blocks in use (bottom), as steps."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    log = result.iterations
    t = log[:, 0]
    top.step(t, log[:, 2], where="pre", color="#1f77b4", lw=1, label="running")
    top.step(t, log[:, 3], where="pre", color="#d62728", lw=1, label="waiting")
    top.set_ylabel("requests")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    share = 100 * log[:, 4] / max(result.blocks, 1)
    bottom.step(t, share, where="pre", color="#2ca02c", lw=1, label="KV blocks in use")
    bottom.set_ylim(0, 105)
    bottom.set_ylabel(f"% of {result.blocks:,} KV blocks")
    bottom.set_xlabel("time (s)")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.2)
    return fig
