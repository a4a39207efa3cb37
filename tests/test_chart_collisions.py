"""Issue 31: nothing on a chart hides anything else. Every chart kind the tool draws
(rooflines with 1-4 devices, panels, all dtypes, decode on one and four devices and four
with every dtype, every memory-wall figure, the generations chart, the simulation chart) is
rendered and read back (chart_collisions.py): no text overlaps another text or a legend, no
text covers a marker, no line (roof, trend, ridge, ceiling, another label's leader) runs
through a text, no text crosses the frame, and no two markers sit on one spot. The counts
were, before the placer treated markers and lines as obstacles: 1-4 device rooflines 20,
36, 43 and 66; panels 52; all dtypes 37; decode 43 and 118 (four devices with every dtype
136); memory wall 11, model sizes 6, training compute 5, generations 11; training memory
and simulation 0."""

from __future__ import annotations

import matplotlib
import pytest
from chart_collisions import KINDS, chart_kinds, collisions

matplotlib.use("Agg")

QUICK = {"roofline 2 devices", "decode 1 device"}  # the rest draw big charts: slow


@pytest.mark.parametrize(
    "name",
    [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in chart_kinds()],
)
def test_no_collisions(name):
    found = collisions(chart_kinds()[name]())
    assert {k: found[k] for k in KINDS if found[k]} == {}


def test_the_counter_counts():
    """The counter itself, on a chart made to collide: two labels on one spot, a label on a
    marker and across a line, two markers on one spot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.plot([0, 10], [5, 5])
    ax.scatter([2, 2, 8], [2, 2, 8], s=100)
    ax.text(1.5, 4.8, "across the line")
    ax.text(1.5, 4.8, "on the first")
    ax.text(7.6, 7.8, "a mark")
    found = collisions(fig)
    assert len(found["text-text"]) == 1
    assert len(found["text-line"]) == 2
    assert len(found["text-marker"]) == 1
    assert len(found["coincident"]) == 1
