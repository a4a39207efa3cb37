"""Energy, power and carbon: the lines and fields the commands add, and `validate --energy`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import new_table, si

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..analysis import Result
    from ..energy import Energy, ServingEnergy
    from ..energy_runs import EnergyCheck
    from ..serve import ServeResult


def _opt(value: float | None, unit: str) -> str:
    return "n/a" if value is None else si(value, unit)


def energy_lines(e: Energy, work: float | None, unit: str) -> list[str]:
    """Table lines for one span of work (a step, a batch of requests): `work` units done."""
    if e.energy_j is None:
        return [f"energy          n/a: {e.reason}"]
    per = e.per(work) if work else None
    site = e.site
    return [
        f"energy          {si(e.energy_j, 'J')} over {e.devices} device(s)"
        + (f", {per:.3g} J/{unit}" if per is not None else "")
        + f"  (PUE {site.pue:g}, node {site.node_power_w:g} W/device)",
        f"power           {si(e.device_power_w or 0, 'W')} a device at activity "
        f"{100 * (e.utilization or 0):.0f}%, {si(e.average_power_w or 0, 'W')} in all",
        f"carbon          {si((e.co2_g or 0) / 1e3, 'kg')} CO2eq at {site.grid_g_per_kwh:g} "
        f"g/kWh ({site.grid}, location-based)",
    ]


def validate_rows(checks: list[EnergyCheck]) -> list[dict[str, Any]]:
    return [
        {
            "run": c.run.key,
            "kind": c.run.kind,
            "figure": c.figure,
            "published": c.published,
            "predicted": c.predicted,
            "rel_error": c.rel_error,
            "modelled_energy_kwh": c.modelled_energy_kwh,
            "reason": c.reason or None,
            "file": c.run.path,
        }
        for c in checks
    ]


def validate_table(checks: list[EnergyCheck], summary: dict[str, float | None]) -> list[Any]:
    table = new_table(
        "Energy and emissions: published vs predicted (nothing fitted)",
        ("run", "figure", "published", "predicted", "error", "model kWh"),
        left=("run", "figure"),
    )
    for c in checks:
        table.add_row(
            c.run.key,
            c.figure,
            f"{c.published:,.4g}",
            "n/a" if c.predicted is None else f"{c.predicted:,.4g}",
            "n/a" if c.rel_error is None else f"{100 * c.rel_error:+.1f}%",
            "" if c.modelled_energy_kwh is None else f"{c.modelled_energy_kwh:,.4g}",
        )
    lines = "median |error|: " + ", ".join(
        f"{k} {100 * v:.1f}%" for k, v in summary.items() if v is not None
    )
    out: list[RenderableType] = [table, lines]
    return out


def serving_columns(s: ServingEnergy) -> dict[str, Any]:
    e = s.energy
    return {
        "joules_per_output_token": s.joules_per_output_token,
        "average_power_w": e.average_power_w,
        "decode_device_power_w": s.decode_power_w,
        "co2_g_per_output_token": (
            None
            if e.co2_g is None or not s.joules_per_output_token or not e.energy_j
            else e.co2_g * s.joules_per_output_token / e.energy_j
        ),
        "energy_reason": e.reason or None,
    }


def serving_lines(results: list[ServeResult], energies: list[ServingEnergy]) -> list[Any]:
    """One line a device: J per output token, the replica's average power, carbon."""
    lines = []
    for r, s in zip(results, energies):
        e = s.energy
        if s.joules_per_output_token is None or e.average_power_w is None:
            lines.append(f"{r.device.key}: energy n/a: {e.reason}")
            continue
        co2 = serving_columns(s)["co2_g_per_output_token"] or 0.0
        lines.append(
            f"{r.device.key}: {s.joules_per_output_token:.3g} J a output token, "
            f"{si(e.average_power_w, 'W')} a replica of {e.devices} (decode "
            f"{si(s.decode_power_w or 0, 'W')} a device), {1e3 * co2:.3g} mg CO2eq a token "
            f"(PUE {e.site.pue:g}, {e.site.grid} grid {e.site.grid_g_per_kwh:g} g/kWh, "
            "location-based)"
        )
    return ["\n".join(lines)]


def step_tokens(r: Result) -> float | None:
    """Tokens a step of `r` processes over its whole layout (None: a model without tokens):
    batch x seq, a decode step batch."""
    if r.seq is None:
        return None
    return float(r.run.batch * (1 if r.run.phase == "decode" else r.seq))


def step_dict(e: Energy, tokens: float | None) -> dict[str, Any]:
    """A step's energy (all the layout's devices) with joules per token."""
    return e.as_dict() | {"joules_per_token": e.per(tokens) if tokens else None}
