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
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.lines import Line2D
    from matplotlib.path import Path
    from matplotlib.text import Annotation, Text
    from matplotlib.transforms import Bbox

    from .analysis import Result
    from .hardware import Device
    from .memwall import Generation, Trend
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


# Where a point's label may go, in points from the point: eight directions at growing
# distances; the first place whose text and leader line hit nothing (labels, legends,
# markers, lines, the frame) wins, else the least-bad (a greedy placement: the charts have
# tens of labels, not thousands).
# points between neighbouring devices' whole-step stars (a star of s=220 is ~15 points wide)
STAR_SHIFT_PT = 16.0
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
LABEL_PLACES = [
    (dx * d, dy * d) for d in (3, 10, 18, 28, 42, 60, 85, 115) for dx, dy in _DIRECTIONS
]
CORE = 0.7  # the share of a marker's radius labels keep off: its inscribed square, a bit more


class _Placer:
    """What a label must keep off, read from the axes once its layout is final: the boxes of
    the texts and legends already there, every marker (as the square core of its symbol), every
    line's path in pixels and the axes' frame. `settle` moves a label to its best place and
    adds it (and its leader line) to the obstacles."""

    def __init__(self, ax: Axes, skip: Sequence[Text] = ()) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PathCollection
        from matplotlib.legend import Legend
        from matplotlib.text import Text as PlainText

        fig = cast("Figure", ax.figure)
        self.renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
        for note in skip:  # labels to place stay inside the axes: the layout ignores them
            note.set_in_layout(False)
        fig.draw_without_rendering()  # settle the layout: the axes' box is final from here
        self.frame = ax.get_window_extent(self.renderer)
        self.boxes: list[Bbox] = [
            a.get_window_extent(self.renderer) for a in ax.get_children() if isinstance(a, Legend)
        ]
        self.boxes += [
            PlainText.get_window_extent(t, self.renderer)
            for t in ax.texts
            if t not in skip and t.get_text().strip()
        ]
        self.markers: list[tuple[float, float, float]] = []
        for c in ax.collections:
            offsets: np.ndarray = np.ma.filled(np.ma.asarray(c.get_offsets(), float), np.nan)
            if isinstance(c, PathCollection) and len(offsets):
                xy = c.get_offset_transform().transform(offsets)
                sizes = np.broadcast_to(np.asarray(c.get_sizes(), float), (len(xy),))
                radii = np.sqrt(sizes) / 2 * fig.dpi / 72
                self.markers += [
                    (float(x), float(y), float(r))
                    for (x, y), r in zip(xy, radii)
                    if np.isfinite(x) and np.isfinite(y)
                ]
        self.lines: list[Path] = [
            line.get_transform().transform_path(line.get_path())
            for line in ax.lines
            if line.get_linestyle() not in ("None", "", " ") and len(line.get_path()) > 1
        ]
        leaders = [self._leader(t) for t in ax.texts if t not in skip]
        self.lines += [p for p in leaders if p is not None]

    def _leader(self, note: Text) -> Path | None:
        arrow = getattr(note, "arrow_patch", None)
        if arrow is None:
            return None
        return cast("Path", arrow.get_transform().transform_path(arrow.get_path()))

    def cost(self, box: Bbox, leader: Path | None, anchor: tuple[float, float] | None) -> float:
        f = self.frame
        inside = f.x0 <= box.x0 and box.x1 <= f.x1 and f.y0 <= box.y0 and box.y1 <= f.y1
        cost = 0.0 if inside else 20.0
        cost += 3 * sum(box.overlaps(o) for o in self.boxes)
        cost += 2 * sum(path.intersects_bbox(box, filled=False) for path in self.lines)
        cores = [
            (x - CORE * r, y - CORE * r, x + CORE * r, y + CORE * r) for x, y, r in self.markers
        ]
        cost += 2 * sum(
            box.x0 < x1 and x0 < box.x1 and box.y0 < y1 and y0 < box.y1 for x0, y0, x1, y1 in cores
        )
        if leader is not None:
            cost += sum(leader.intersects_bbox(o, filled=False) for o in self.boxes)
            from matplotlib.transforms import Bbox

            for (x, y, r), (x0, y0, x1, y1) in zip(self.markers, cores):
                near = anchor is not None and np.hypot(x - anchor[0], y - anchor[1]) <= r + 1
                if not near and leader.intersects_bbox(Bbox.from_extents(x0, y0, x1, y1)):
                    cost += 0.5
        return float(cost)

    def settle(self, note: Annotation, places: Sequence[Place], own: bool = True) -> float:
        """Put `note` at the first of `places` (each: xy or None, offset in points, alignment)
        with no collision, else at the least-bad one; return that place's cost."""
        from matplotlib.text import Text as PlainText

        def put(place: Place) -> tuple[Bbox, Path | None]:
            xy, (dx, dy), ha, va = place
            if xy is not None:
                note.xy = xy
            note.set_position((dx, dy))
            note.set_horizontalalignment(ha)  # type: ignore[arg-type]
            note.set_verticalalignment(va)  # type: ignore[arg-type]
            note.update_positions(self.renderer)  # an annotation places its text when drawn
            return PlainText.get_window_extent(note, self.renderer), self._leader(note)

        anchor = None
        if own and note.axes is not None and note.xycoords == "data":
            a = note.axes.transData.transform(note.xy)
            anchor = (float(a[0]), float(a[1]))
        best, best_cost = places[0], float("inf")
        for place in places:
            box, leader = put(place)
            cost = self.cost(box, leader, anchor)
            if cost < best_cost:
                best, best_cost = place, cost
            if cost == 0:
                break
        box, leader = put(best)
        self.boxes.append(box)
        if leader is not None:
            self.lines.append(leader)
        return best_cost


Place = tuple[tuple[float, float] | None, tuple[float, float], str, str]


def _around(offsets: Sequence[tuple[float, float]]) -> list[Place]:
    """Places at these offsets from the point, each aligned away from it."""
    return [
        (
            None,
            (dx, dy),
            "left" if dx > 0 else "right" if dx < 0 else "center",
            "bottom" if dy > 0 else "top" if dy < 0 else "center",
        )
        for dx, dy in offsets
    ]


def _name_points(
    ax: Axes, points: Sequence[tuple[float, float, str] | tuple[float, float, str, str]]
) -> None:
    """Label each (x, y, name[, colour]) point clear of the other labels, the markers, the
    lines and the legend where a place exists; a label moved off its point gets a thin
    leader line. Call after the legend is made."""
    notes = [
        ax.annotate(
            point[2],
            (point[0], point[1]),
            xytext=LABEL_PLACES[0],
            textcoords="offset points",
            fontsize=7,
            color=point[3] if len(point) > 3 else "black",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#777777", "shrinkA": 0},
        )
        for point in points
    ]
    placer = _Placer(ax, skip=notes)
    places = _around(LABEL_PLACES)
    for note in notes:
        placer.settle(note, places)


def _short(name: str) -> str:
    """A workload's name for a label: without its parenthesised qualifier."""
    return name.split(" (")[0]


def _measured_roof(ax: Axes, r: Result, x: np.ndarray, color: str) -> tuple[str, float] | None:
    """The device file's measured ceilings (dash-dot) under the datasheet roof; returns its
    label (the share of the datasheet figure they reach) and its level in TFLOP/s, for the
    caller to place; nothing when none is measured or they are the datasheet's (a `roofline
    measure` file has no other)."""
    from .hardware import ceilings

    c = ceilings(r.device, r.run.dtype)
    peak, bw = r.peak_flops_per_s, r.device.memory_bandwidth_bytes_per_s
    pa = c.flops_per_s if c.gemm_measured else peak
    wa = c.bandwidth_bytes_per_s if c.bandwidth_measured else bw
    if pa >= peak * (1 - 1e-9) and wa >= bw * (1 - 1e-9):
        return None
    ax.plot(x, np.minimum(pa, x * wa) / TFLOP, color=color, lw=1.2, ls="-.", alpha=0.9)
    parts = []
    if pa < peak * (1 - 1e-9):
        parts.append(f"GEMM {pa / TFLOP:,.0f} TFLOP/s ({100 * pa / peak:.0f}%)")
    if wa < bw * (1 - 1e-9):
        parts.append(f"{wa / 1e9:,.0f} GB/s ({100 * wa / bw:.0f}%)")
    return "measured: " + ", ".join(parts), pa / TFLOP


def _along_roof(level: float, ridge: float, hi: float) -> list[Place]:
    """Places for a ceiling's label: right-aligned at points along its flat part (right of
    its ridge), from the right edge leftwards, just under it, then just over it."""
    xs = np.geomspace(hi, min(hi, 2 * ridge), 8)
    rows = ((-3.0, "top"), (3.0, "bottom"), (-9.0, "top"), (9.0, "bottom"), (-15.0, "top"))
    out: list[Place] = [((float(x), level), (-4.0, dy), "right", va) for dy, va in rows for x in xs]
    starts = np.geomspace(1.15 * ridge, max(1.15 * ridge, hi / 8), 5)
    return out + [((float(x), level), (4.0, dy), "left", va) for dy, va in rows for x in starts]


def _ridge_places(ridge: float) -> list[Place]:
    """Places for a ridge's (rotated) label: beside its line, at heights up the axes."""
    return [
        ((ridge, y), (dx, 0), "right" if dx < 0 else "left", "bottom")
        for y in (0.02, 0.14, 0.26, 0.38, 0.5, 0.62)
        for dx in (-3, 3)
    ]


def _side_by_side(ax: Axes, layers: Sequence[PathCollection]) -> None:
    """Layers that land on one spot (a decoder's projections share an intensity and a rate)
    are set side by side, largest first, so that each centre is its own (the HTML report
    does the same); shifted in pixels, drawn at their own height."""
    fig = cast("Figure", ax.figure)
    fig.draw_without_rendering()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())  # the shifts are pixels: the scales stay where they are
    scale = fig.dpi / 72
    placed: list[tuple[float, float, float]] = []  # x, y, radius of the markers kept
    for c in layers:
        xy = ax.transData.transform(np.ma.filled(c.get_offsets(), np.nan))
        radii = np.sqrt(np.broadcast_to(c.get_sizes(), (len(xy),))) / 2 * scale
        for i in np.argsort(-radii):
            x, y, r = float(xy[i, 0]), float(xy[i, 1]), float(radii[i])
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            while any(np.hypot(x - a, y - b) < max(1.0, min(r, q) / 2) for a, b, q in placed):
                x += r + 1
            placed.append((x, y, r))
            xy[i, 0] = x
        c.set_offsets(ax.transData.inverted().transform(xy))


def _headroom(ax: Axes, legend: Legend) -> None:
    """Raise the top of the (log) y axis so that `legend`, at the upper left, sits above
    every roof and point instead of over them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = cast("Figure", ax.figure)
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    fig.draw_without_rendering()
    frame, box = ax.get_window_extent(renderer), legend.get_window_extent(renderer)
    need = frame.y1 - box.y0 + 4  # pixels from the legend's foot to the top of the frame
    ylo, yhi = ax.get_ylim()
    decades = np.log10(yhi / ylo)
    if need < frame.height:
        ax.set_ylim(ylo, yhi * 10 ** (need * decades / (frame.height - need)))


def _stars_apart(
    ax: Axes,
    steps: Sequence[tuple[Line2D, PathCollection, PathCollection]],
    layers: Sequence[PathCollection],
) -> None:
    """Each device's whole-step stars (and the line between them) moved right, as one, until
    no star is within a star's width of another, nor its centre under a layer point (a
    decoder's step lands where its largest layers are)."""
    from matplotlib.transforms import ScaledTranslation

    fig = cast("Figure", ax.figure)
    width = STAR_SHIFT_PT * fig.dpi / 72 * 0.95
    scale = fig.dpi / 72
    points = []
    for c in layers:
        pixels = ax.transData.transform(np.ma.filled(c.get_offsets(), np.nan))
        radii = np.sqrt(np.broadcast_to(c.get_sizes(), (len(pixels),))) / 2 * scale
        points += [(p, r) for p, r in zip(pixels, radii) if np.isfinite(p).all()]
    placed: list[np.ndarray] = []
    for line, *stars in steps:
        where = [s.get_offset_transform() for s in stars]
        xy = [w.transform(np.ma.filled(s.get_offsets(), np.nan))[0] for w, s in zip(where, stars)]

        def clash(shift: float, xy: list[np.ndarray] = xy) -> bool:
            moved = [p + np.array([shift, 0.0]) for p in xy]
            return any(np.hypot(*(m - p)) < width for m in moved for p in placed) or any(
                np.hypot(*(m - p)) < max(r, width / 2) for m in moved for p, r in points
            )

        shift = 0.0
        while clash(shift) and shift < 40 * width:
            shift += width / 4
        for s, w, p in zip(stars, where, xy):
            moved = p + np.array([shift, 0.0])
            s.set_offsets(w.inverted().transform([moved]))
            placed.append(moved)
        # in inches, not pixels: the figure may be saved at another dpi
        line.set_transform(
            line.get_transform() + ScaledTranslation(shift / fig.dpi, 0, fig.dpi_scale_trans)
        )


def roofline(
    results: Sequence[Result], ax: Axes | None = None, *, all_dtypes: bool = False, top: int = 5
) -> Figure:
    """Log-log roofline of one workload on one or more devices.

    One roof per device (memory slope and compute ceiling for the run's dtype; with
    `all_dtypes`, dashed ceilings for the device's other dtypes; dash-dot, the ceilings
    its file says were measured, with their share of the datasheet's), its ridge point marked,
    every layer a point at (intensity, attainable FLOP/s at the bound) on each device, its
    area proportional to its share of the time, its colour its kind; the whole step at the
    bound (filled star) and as expected (open star); the `top` layers by time on the first
    device are labelled (layers at one spot share a label)."""
    if not results:
        raise RooflineError("nothing to plot: no results")
    if len(results) > len(DEVICE_STYLES):
        raise RooflineError(f"--hw: at most {len(DEVICE_STYLES)} devices on one roofline chart")
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

    from .report import seconds

    fig, ax = _figure(ax, (10, 6.5))
    intensity = np.concatenate([r.intensity for r in results])
    positive = intensity[intensity > 0]
    lo = min(0.1, float(positive.min()) / 2) if positive.size else 0.1
    ridges = [r.ridge_point for r in results]
    # fitted to the data: past the last layer, and a decade past the last ridge so the flat
    # roof shows and the ridge labels clear the kind legend at the lower right
    hi = max(float(intensity.max()) * 3, max(ridges) * 16)
    x = np.logspace(np.log10(lo), np.log10(hi), 400)
    device_handles = []
    measured: list[tuple[str, float]] = []
    ridge_notes: list[Annotation] = []
    ceiling_notes: list[tuple[Annotation, float, float]] = []  # label, level, its ridge
    # a ceiling's label: (text, level) -> the devices at it, its colour, its ridge; devices
    # whose ceilings meet (H100 and H200 both measure 794 TFLOP/s) share one label
    ceiling_names: dict[tuple[str, float], tuple[list[str], str, float]] = {}
    layer_points = []
    steps: list[tuple[Line2D, PathCollection, PathCollection]] = []
    for index, ((color, marker), r) in enumerate(zip(DEVICE_STYLES, results)):
        peak, bw = r.peak_flops_per_s, r.device.memory_bandwidth_bytes_per_s
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
        found = _measured_roof(ax, r, x, color)
        if found is not None:
            measured.append(found)
            text, level = found
            ceiling_names.setdefault((text, round(level, 6)), ([], color, level / bw))[0].append(
                r.device.key
            )
        ax.axvline(r.ridge_point, color=color, ls=":", lw=1)
        ridge_notes.append(
            ax.annotate(
                f"ridge {r.ridge_point:,.0f} FLOP/B",
                (r.ridge_point, 0.02),
                xycoords=("data", "axes fraction"),
                xytext=(-3, 0),
                textcoords="offset points",
                rotation=90,
                ha="right",
                va="bottom",
                fontsize=8,
                color=color,
            )
        )
        if all_dtypes:  # other dtypes' ceilings, one label for dtypes that share a peak
            ceilings: dict[float, list[str]] = {}
            for dtype, other in r.device.peak_flops_per_s.items():
                if other != peak:
                    ceilings.setdefault(other, []).append(dtype)
            for other, names in ceilings.items():
                ax.plot(x, np.minimum(other, x * bw) / TFLOP, color=color, lw=1, ls="--", alpha=0.6)
                key = ("/".join(names), round(other / TFLOP, 6))
                ceiling_names.setdefault(key, ([], color, other / bw))[0].append(r.device.key)
        # the whole step: at the bound (filled star) and as expected (open star) below it
        ai = r.intensity_overall
        at_bound, expected = (
            r.achieved_flops_per_s / TFLOP,
            r.total_flops / (r.total_expected_time_s * TFLOP),
        )
        # each device's stars shifted sideways by its own few points: one workload has one
        # intensity, so devices whose bound and expected figures meet would hide each other;
        # drawn under the layer points (zorder 2.5 < 3), which stay visible and hoverable
        shift = ax.transData + ScaledTranslation(
            STAR_SHIFT_PT * (index - (len(results) - 1) / 2) / 72, 0, fig.dpi_scale_trans
        )
        (between,) = ax.plot(
            [ai, ai], [expected, at_bound], color=color, lw=1, zorder=2.4, transform=shift
        )
        bound_star = ax.scatter(
            [ai], [at_bound], marker="*", s=220, color=color, edgecolors="black", zorder=2.5,
            transform=shift,
        )  # fmt: skip
        expected_star = ax.scatter(
            [ai], [expected], marker="*", s=220, facecolors="white", edgecolors=color,
            zorder=2.5, transform=shift,
        )  # fmt: skip
        steps.append((between, bound_star, expected_star))
        shares = r.time_s / r.total_time_s
        colors = [KIND_COLORS.get(str(k), "#000000") for k in r.layers.kind]
        xs = np.where(r.intensity > 0, r.intensity, lo)
        layer_points.append(
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
        )
    for (text, level), (keys, color, ridge) in ceiling_names.items():
        whose = f" ({', '.join(keys)})" if len(results) > 1 else ""
        note = ax.annotate(
            text + whose, (hi, level), xytext=(-4, -3), textcoords="offset points",
            ha="right", va="top", fontsize=7, color=color,
        )  # fmt: skip
        ceiling_notes.append((note, level, ridge))
    first = results[0]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("Arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("Attainable performance at the bound (TFLOP/s, 1e12 FLOP/s)")
    if first.run.phase == "decode":  # one new token a sample, attending to the cached ones
        seq = f", 1 new token, context {first.seq}" if first.seq else ", 1 new token"
    else:
        seq = f", seq {first.seq}" if first.seq else ""
    kinds_of_dtype = list(dict.fromkeys(r.run.dtype for r in results))
    dtype = kinds_of_dtype[0] if len(kinds_of_dtype) == 1 else "each device's 16-bit type"
    ax.set_title(f"{first.workload.name}: {first.run.phase}, batch {first.run.batch}{seq}, {dtype}")
    ax.grid(True, which="both", alpha=0.2)
    kinds = sorted({str(k) for r in results for k in r.layers.kind})
    kind_handles = [
        Line2D([], [], ls="", marker="o", color=KIND_COLORS.get(k, "#000"), label=k) for k in kinds
    ]
    first_legend = ax.legend(
        handles=device_handles,
        loc="upper left",
        fontsize=8,
        title="device roof (marker = its layers, at the bound; stars: the whole step at the "
        "bound, filled, and expected, open"
        + ("; dash-dot: measured ceilings)" if measured else ")"),
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
    _headroom(ax, first_legend)
    # the top layers by time on the first device; layers at one spot share a label
    pixels = ax.transData.transform(np.ma.filled(layer_points[0].get_offsets(), np.nan))
    _side_by_side(ax, layer_points)
    _stars_apart(ax, steps, layer_points)
    order = [int(i) for i in np.argsort(-first.time_s)[:top]]
    where: np.ndarray = np.ma.filled(np.ma.asarray(layer_points[0].get_offsets(), float), np.nan)
    groups: dict[tuple[float, float], list[int]] = {}
    for i in order:
        near = next((g for g in groups if np.hypot(*(pixels[i] - g)) < 4), None)
        groups.setdefault(near or (float(pixels[i, 0]), float(pixels[i, 1])), []).append(i)
    whose = f"shares of {first.device.key}'s step" if len(results) > 1 else ""
    layer_notes = []
    for members in groups.values():
        lines = [
            f"{first.layers.name[i]} ({100 * first.time_s[i] / first.total_time_s:.0f}%)"
            for i in members
        ]
        if whose and len(lines) == 1:
            lines = [lines[0][:-1] + f" of {first.device.key}'s step)"]
        elif whose:
            lines.append(f"({whose})")
        text = "\n".join(lines)
        layer_notes.append(
            ax.annotate(
                text,
                (float(where[members[0], 0]), float(where[members[0], 1])),
                xytext=(12, -12),
                textcoords="offset points",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#555555", "shrinkA": 0},
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.8, "lw": 0},
            )
        )
    # every label keeps off the legends, the markers, the lines and each other: the ridge
    # labels beside their lines, the ceilings' along their roofs, the layers' around their point
    placer = _Placer(ax, skip=[*ridge_notes, *(n for n, _, _ in ceiling_notes), *layer_notes])
    for note in ridge_notes:
        placer.settle(note, _ridge_places(float(note.xy[0])), own=False)
    for note, level, ridge in ceiling_notes:
        placer.settle(note, _along_roof(level, ridge, hi), own=False)
    far = [(dx * d, dy * d) for d in (14, 28, 45, 65, 90, 120) for dx, dy in _DIRECTIONS]
    grid = [(dx, dy) for dx in range(-240, 241, 40) for dy in (-120, -90, -65, -45, 45, 65, 90)]
    grid.sort(key=lambda p: np.hypot(*p))
    places = _around(far) + [(None, p, "center", "top" if p[1] < 0 else "bottom") for p in grid]
    for note in layer_notes:
        placer.settle(note, places)
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


def _outliers(years: np.ndarray, values: np.ndarray, trend: Trend, most: int = 3) -> list[int]:
    """The (up to `most`) points furthest from their fitted line, by log distance, of those
    more than twice the typical (root-mean-square) distance away: the ones worth naming."""
    off = np.abs(np.log(values) - np.log(trend.at(years)))
    typical = float(np.sqrt(np.mean(off**2)))
    return [int(i) for i in np.argsort(-off)[:most] if off[i] > 2 * typical]


def _once(years: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indices of the distinct (year, value) points: two devices released the same day with
    the same figure would be one marker on top of another (the fit keeps both)."""
    pairs = np.column_stack([years, np.log(values)]).round(6)
    return np.sort(np.unique(pairs, axis=0, return_index=True)[1])


def memory_wall(devices: Sequence[Device], ax: Axes | None = None, labels: int = 12) -> Figure:
    """Fig. 1 of the paper from the device database: each series normalised to its first
    device, log scale, with its fitted growth line; `labels` devices of the FLOP/s series
    are named (spread over time), and every series' outliers (the points furthest from its
    line) in its colour. Each series starts at 1, its first device: one hollow marker for
    the start(s) they share."""
    from .memwall import PAPER_RATES, fit_trend, series

    fig, ax = _figure(ax, (10, 6.5))
    data = series(list(devices))
    named: list[tuple[float, float, str, str]] = []
    starts: dict[float, str] = {}
    for name, (years, values, keys) in data.items():
        if len(years) < 2:
            continue
        trend = fit_trend(years, values)
        norm = values / values[0]
        color = SERIES_COLORS[name]
        drawn = [int(i) for i in _once(years, values) if i > 0]
        ax.scatter(years[drawn], norm[drawn], color=color, s=22, zorder=3)
        starts.setdefault(float(years[0]), str(keys[0]))
        span = np.linspace(years.min(), years.max(), 50)
        ax.plot(
            span,
            trend.at(span) / values[0],
            color=color,
            lw=1.5,
            label=f"{SERIES_LABELS[name]}: {trend.growth_per_2y:.2f}x / 2 yrs "
            f"(paper {PAPER_RATES[name]:.1f}x)",
        )
        pick: set[int] = set()
        if name == "peak_flops":
            spread = np.linspace(0, len(keys) - 1, min(labels, len(keys))).round().astype(int)
            pick |= {int(i) for i in spread}
        pick |= set(_outliers(years, values, trend))
        named += [
            (float(years[i]), float(norm[i]), str(keys[i]), color) for i in sorted(pick) if i > 0
        ]
    ax.scatter(
        list(starts), [1.0] * len(starts), s=40, facecolors="white", edgecolors="black",
        zorder=3.5, label="each series' first device (= 1)",
    )  # fmt: skip
    named += [(y, 1.0, key, "black") for y, key in starts.items()]
    _finish_log_chart(
        ax,
        "Release date (year)",
        "Scaling relative to the first device of each series",
        "The memory wall in this tool's device database (named: a spread, and the outliers)",
    )
    # placed after the legend, clear of each other, the dots, the lines and the legend
    _name_points(ax, named)
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
    ax.scatter(
        years[window], params[window], color="#1f77b4", zorder=3, label="transformer (in the fit)"
    )
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
    once = _once(ay, av)  # devices of one date and capacity: one square
    ax.scatter(
        ay[once], av[once], color="#d62728", marker="s", zorder=3,
        label="accelerator: its memory / 6 B, the parameters it holds for training",
    )  # fmt: skip
    aspan = np.linspace(ay.min(), ay.max(), 50)
    ax.plot(
        aspan,
        mem_trend.at(aspan),
        color="#d62728",
        label=f"accelerator memory / 6 B a parameter: {mem_trend.growth_per_2y:.2f}x / 2 yrs "
        "(paper 2x)",
    )
    _finish_log_chart(ax, "Date (year)", "Parameters", "Model size vs accelerator memory")
    named: list[tuple[float, float, str, str]] = [
        (y, p, _short(name), "black") for y, p, (_, _, name) in zip(years, params, models)
    ]
    # a curated set (--paper): every accelerator named; else those furthest from the line
    keep = range(len(accel)) if len(accel) <= 12 else _outliers(ay, av, mem_trend, most=4)
    same: dict[tuple[float, float], list[str]] = {}
    for i in keep:
        same.setdefault((float(ay[i]), float(av[i])), []).append(accel[i][2])
    named += [(y, v, "/".join(keys), "#d62728") for (y, v), keys in same.items()]
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
    ticks = []
    for n, w in zip(names, rows):
        m = w.published.training_memory
        size = (
            ""
            if m is None
            else f"\nbatch {m.batch}\n{m.input_size}" + (" tokens" if w.arch.takes_seq else "")
        )
        ticks.append(f"{n}\n{(w.published.date or '')[:4]}{size}")
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_ylabel("Training memory (GB, 1e9 bytes)")
    ax.set_title(
        "Training memory at the table's batch and input size (fp32 weights; optimizer 1x CV, "
        "2x NLP) vs GPU memory"
    )
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
    # no triangle where there is no gap to draw (the oldest device, by definition): it would
    # sit on the dot
    gap = np.abs(np.log(ideal / real)) > np.log(1.1)
    ax.scatter(
        years[gap],
        ideal[gap],
        color="#2ca02c",
        marker="^",
        zorder=3,
        label="if DRAM bandwidth had kept pace with FLOP/s (none: no gap)",
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
