"""The memory wall: growth rates and one workload across device generations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import new_table, seconds

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..memwall import Generation, Trend


def rates_dict(trends: dict[str, Trend]) -> dict[str, Any]:
    from ..memwall import PAPER_RATES

    return {
        "rates": {name: t.growth_per_2y for name, t in trends.items()},
        "paper_rates": dict(PAPER_RATES),
        "series": [
            {
                "series": name,
                "growth_per_2y": t.growth_per_2y,
                "paper": PAPER_RATES[name],
                "devices": t.points,
            }
            for name, t in trends.items()
        ],
    }


def rates_table(trends: dict[str, Trend], over: str = "the device database") -> RenderableType:
    """The fitted growth rates; `over` names the devices fitted (--paper: the paper's set,
    --hw: the devices given)."""
    from ..memwall import PAPER_RATES

    table = new_table(
        f"Growth per two years, fitted over {over} (least squares on log value vs release date)",
        ("series", "fitted", "paper", "devices"),
        left=("series",),
    )
    for name, t in trends.items():
        table.add_row(name, f"{t.growth_per_2y:.2f}x", f"{PAPER_RATES[name]:.1f}x", str(t.points))
    return table


def generation_rows(gens: list[Generation]) -> list[dict[str, Any]]:
    return [
        {
            "device": g.device.key,
            "release": g.device.release,
            "dtype": g.dtype,
            "ridge_point": g.ridge_point,
            "time_s": g.time_s,
            "memory_bound_time_share": g.memory_bound_share,
            "fraction_of_peak": g.fraction_of_peak,
            "speedup": g.speedup,
            "speedup_if_bandwidth_kept_pace": g.speedup_if_bandwidth_kept_pace,
        }
        for g in gens
    ]


def generation_table(name: str, gens: list[Generation]) -> RenderableType:
    table = new_table(
        f"{name} across generations (each device at its 16-bit tensor peak, else fp32); "
        "speedup over the oldest",
        (
            "device",
            "released",
            "dtype",
            "ridge FLOP/B",
            "time",
            "memory-bound",
            "of peak",
            "speedup",
            "if bandwidth kept pace",
        ),
        left=("device", "released", "dtype"),
    )
    for g in gens:
        table.add_row(
            g.device.key,
            g.device.release,
            g.dtype,
            f"{g.ridge_point:,.1f}",
            seconds(g.time_s),
            f"{100 * g.memory_bound_share:.0f}%",
            f"{100 * g.fraction_of_peak:.0f}%",
            f"{g.speedup:,.1f}x",
            f"{g.speedup_if_bandwidth_kept_pace:,.1f}x",
        )
    return table
