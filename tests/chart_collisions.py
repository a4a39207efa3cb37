"""Counting what hides what on a drawn chart (issue 31): the figure is rendered with Agg and
every visible text's window extent, every marker's centre and size and every line's path are
read back in display pixels.

- text-text: two texts' boxes overlap (labels, annotations, legends; a leader line is not
  its text's box);
- text-marker: a text's box covers part of a marker (a scatter point, a line's marker);
- text-line: a line (a roof, a trend, a ridge, a ceiling, another label's leader line) runs
  through a text's box, or a text crosses the axes' frame;
- coincident: two markers' centres so close that one hides the other (closer than a third
  of the smaller one's radius, or one pixel).

`collisions(fig)` returns, for each kind, a description of each collision found; the chart
test wants every list empty.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.legend import Legend
from matplotlib.path import Path
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

KINDS = ("text-text", "text-marker", "text-line", "coincident")
PAD = 0.5  # pixels a box is shrunk by before testing: a touch is not a collision


def _shrunk(box: Bbox, pad: float = PAD) -> Bbox:
    return Bbox.from_extents(box.x0 + pad, box.y0 + pad, box.x1 - pad, box.y1 - pad)


def _markers(ax: Any, dpi: float) -> list[tuple[float, float, float, str]]:
    """(x, y, radius in pixels, what) of every marker drawn in the axes."""
    out = []
    for c in ax.collections:
        if not (isinstance(c, PathCollection) and c.get_visible()):
            continue
        offsets = c.get_offsets()
        if len(offsets) == 0:
            continue
        xy = c.get_offset_transform().transform(offsets)
        sizes = np.broadcast_to(np.asarray(c.get_sizes(), float), (len(xy),))
        for (x, y), s in zip(xy, sizes):
            if np.isfinite(x) and np.isfinite(y):
                out.append(
                    (float(x), float(y), np.sqrt(s) / 2 * dpi / 72, f"marker {c.get_label()}")
                )
    for line in ax.lines:
        if not line.get_visible() or line.get_marker() in (None, "None", "", " "):
            continue
        xy = line.get_transform().transform(np.column_stack(line.get_data()))
        r = line.get_markersize() / 2 * dpi / 72
        out.extend((float(x), float(y), r, f"marker {line.get_label()}") for x, y in xy)
    return out


def _lines(ax: Any) -> list[tuple[Path, str, Any]]:
    """(path in display pixels, what, the text it belongs to) of every line in the axes:
    plotted lines and the leader lines of annotations."""
    out: list[tuple[Path, str, Any]] = []
    for line in ax.lines:
        if not line.get_visible() or line.get_linestyle() in ("None", "", " "):
            continue
        if len(line.get_xydata()) < 2:
            continue
        path = line.get_transform().transform_path(line.get_path())
        out.append((path, f"line {line.get_label()}", None))
    for t in ax.texts:
        if isinstance(t, Annotation) and t.arrow_patch is not None and t.get_visible():
            arrow = t.arrow_patch
            path = arrow.get_transform().transform_path(arrow.get_path())
            out.append((path, f"leader of {t.get_text()!r}", t))
    return out


def collisions(fig: Any) -> dict[str, list[str]]:
    """Each kind of collision on the drawn figure, with a line naming each one."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    found: dict[str, list[str]] = {k: [] for k in KINDS}
    for n, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        frame = ax.get_window_extent(renderer)
        texts = [
            (repr(t.get_text()), _shrunk(Text.get_window_extent(t, renderer)), t)
            for t in ax.texts
            if t.get_visible() and t.get_text().strip()
        ]
        legends = [
            (f"legend {a.get_title().get_text()!r}", _shrunk(a.get_window_extent(renderer)), a)
            for a in ax.get_children()
            if isinstance(a, Legend) and a.get_visible()
        ]
        where = f"axes {n}: " if len(fig.axes) > 1 else ""
        for (a, x, _), (b, y, _) in itertools.combinations(texts + legends, 2):
            if x.overlaps(y):
                found["text-text"].append(f"{where}{a} / {b}")
        markers = _markers(ax, fig.dpi)
        for (a, box, _), (mx, my, r, what) in itertools.product(texts + legends, markers):
            k = 0.7 * r  # the marker's core: its inscribed square, a little more
            if box.overlaps(Bbox.from_extents(mx - k, my - k, mx + k, my + k)):
                found["text-marker"].append(f"{where}{a} / {what} at ({mx:.0f}, {my:.0f})")
        for (a, box, t), (path, what, owner) in itertools.product(texts, _lines(ax)):
            if owner is not t and path.intersects_bbox(box, filled=False):
                found["text-line"].append(f"{where}{a} / {what}")
        for a, box, _ in texts:
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
            if not (inside and box.y1 <= frame.y1):
                found["text-line"].append(f"{where}{a} / the axes' frame")
        for (ax_, ay, ar, a), (bx, by, br, b) in itertools.combinations(markers, 2):
            if np.hypot(ax_ - bx, ay - by) < max(1.0, min(ar, br) / 3):
                found["coincident"].append(f"{where}{a} / {b} at ({ax_:.0f}, {ay:.0f})")
    return found


def counts(fig: Any) -> dict[str, int]:
    return {k: len(v) for k, v in collisions(fig).items()}


def chart_kinds() -> dict[str, Any]:
    """Every chart kind the tool draws, as the commands draw it: name -> a function making
    the figure (rooflines with 1-4 devices, panels, all dtypes, decode on one and four
    devices, every memory-wall figure, the generations chart, the simulation chart)."""
    from roofline import RunConfig, analyze, get_device, get_workload, list_devices, plot
    from roofline.memwall import generations
    from roofline.workloads import list_workloads

    bert = RunConfig(batch=1, seq=512)
    decode = RunConfig(batch=1, phase="decode", context=4096)

    def on(model: str, hws: str, run: RunConfig) -> list[Any]:
        return [analyze(model, hw, run) for hw in hws.split(",")]

    def simulation() -> Any:
        from roofline.simulate import simulate
        from roofline.traffic import Requests, arrivals, engine, lengths

        h100, n = get_device("h100"), 600
        stream = Requests(
            arrivals(n, 22.0, seed=0),
            lengths(n, 1024, kind="lognormal", spread=0.5, seed=1),
            lengths(n, 128, kind="lognormal", spread=0.5, seed=2),
        )
        run = RunConfig(phase="decode", attention="flash")
        served = simulate(get_workload("llama-3-8b"), run, h100, stream, engine("vllm", h100))
        return plot.simulation(served, "Llama 3 8B on one H100, 22 requests/s")

    four = "a100,h100,mi300x,h200"
    return {
        "roofline 1 device": lambda: plot.roofline(on("bert-large", "a100", bert)),
        "roofline 2 devices": lambda: plot.roofline(on("bert-large", "a100,h100", bert)),
        "roofline 3 devices": lambda: plot.roofline(on("bert-large", "a100,h100,mi300x", bert)),
        "roofline 4 devices": lambda: plot.roofline(on("bert-large", four, bert)),
        "panels": lambda: plot.roofline_panels(on("bert-large", "a100,h100,mi300x", bert)),
        "all dtypes": lambda: plot.roofline(on("bert-large", "a100,h100", bert), all_dtypes=True),
        "decode 1 device": lambda: plot.roofline(on("llama-2-7b", "a100", decode)),
        "decode 4 devices": lambda: plot.roofline(on("llama-2-7b", four, decode)),
        "decode 4 devices all dtypes": lambda: plot.roofline(
            on("llama-2-7b", four, decode), all_dtypes=True
        ),
        "memory wall": lambda: plot.memory_wall(list_devices()),
        "model sizes": lambda: plot.model_sizes(list_workloads(), list_devices()),
        "training compute": lambda: plot.training_compute(list_workloads()),
        "training memory": lambda: plot.training_memory(list_workloads(), list_devices()),
        "generations": lambda: plot.generations(
            generations(get_workload("bert-large"), list_devices(), RunConfig(batch=8, seq=512)),
            name="BERT Large (inference, batch 8, seq 512)",
        ),
        "simulation": simulation,
    }


if __name__ == "__main__":  # a table of counts, and with -v every collision named
    import sys

    import matplotlib

    matplotlib.use("Agg")
    verbose = "-v" in sys.argv
    only = [a for a in sys.argv[1:] if a != "-v"]
    print(f"{'chart':<20}" + "".join(f"{k:>13}" for k in KINDS))
    for name, make in chart_kinds().items():
        if only and name not in only:
            continue
        found = collisions(make())
        print(f"{name:<20}" + "".join(f"{len(found[k]):>13}" for k in KINDS), flush=True)
        if verbose:
            for k in KINDS:
                for line in found[k]:
                    print(f"    {k}: {line}")
