"""Energy, power and carbon beside time: what a step, a training run or a deployment draws.

The power model (hardware/defaults/power.yaml, with its sources): a device draws

  P = idle + (max - idle) x u

static power (idle) whatever it does and dynamic power with its compute and memory activity
(the ML.ENERGY Leaderboard's reading of GPU power). `max` is the device file's
`power.max`, else its TDP; `idle` its `power.idle`, else the vendor-neutral idle fraction of
`max` (labelled a default). u, the activity, is the share of the time the step's binding
resource is busy: the roofline bound of its kernels / the expected time (step.py,
efficiency.py). A compute-bound GEMM at 80 % of the peak has u = 0.8; a memory-bound decode
step streaming its weights at 85 % of the bandwidth u = 0.85; a pipeline bubble, exposed
communication and the fitted step overhead count as idle. u is clipped to [0, 1].

Around the devices: a node's non-accelerator power per device (`node_power`, 0 by default:
the model cards' GPU-only boundary) and the data centre's PUE (facility / IT energy). Carbon
is operational and location-based: facility kWh x the grid's average intensity (gCO2eq/kWh),
a number or a region of the sourced table; never market-based, and no embodied carbon.

Units: W, J, s, gCO2eq inside; kWh and tonnes only at the edges. A device without a TDP or a
power block has no power model: its energy is None with the reason.

For the serving simulator (simulate.py) and the SLO planner (slo.py): `iteration_energy`
takes one iteration's expected and bound seconds and the devices it runs on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from ._paths import data_dir
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .errors import FieldError, SpecError
from .hardware import Device

if TYPE_CHECKING:
    from .analysis import Result
    from .serve import ServeResult
    from .step import StepTime

DEFAULTS_FILE = "defaults/power.yaml"
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Region:
    name: str
    g_per_kwh: float
    source: str


@dataclass(frozen=True)
class PowerDefaults:
    idle_fraction: float
    idle_source: str
    model_source: str
    pue: float
    pue_source: str
    node_power_w: float
    node_power_source: str
    grid_default: str
    grid: dict[str, Region]


@cache
def power_defaults() -> PowerDefaults:
    """hardware/defaults/power.yaml, read once and checked."""
    shown = f"hardware/{DEFAULTS_FILE}"
    problems = Problems()
    top = Fields(load_yaml_mapping(data_dir("hardware") / DEFAULTS_FILE, shown), problems)
    idle = top.number("idle_fraction")
    idle_source = top.text("idle_source")
    model_source = top.text("model_source")
    pue = top.number("pue")
    pue_source = top.text("pue_source")
    node = top.raw("node_power_w", {"type": "number", "minimum": 0})
    if not isinstance(node, int | float) or isinstance(node, bool) or node < 0:
        problems.append(f"node_power_w: watts per device, a number >= 0, got {node!r}")
        node = 0.0
    node_source = top.text("node_power_source")
    default = top.text("grid_default")
    regions: dict[str, Region] = {}
    grid = top.raw("grid")
    if not isinstance(grid, dict) or not grid:
        problems.append("grid: a mapping of region -> {intensity: gCO2eq/kWh, source}")
        grid = {}
    for name, entry in grid.items():
        r = Fields(entry, problems, f"grid.{name}")
        value = r.number("intensity")
        text = r.text("source")
        r.done()
        if value is not None and text is not None:
            regions[str(name).lower()] = Region(str(name).lower(), value, text)
    top.done()
    if idle is not None and not 0 <= idle < 1:
        problems.append(f"idle_fraction: a share of the maximum power from 0 to < 1, got {idle}")
    if pue is not None and not 1 <= pue < 5:
        problems.append(f"pue: facility / IT energy, from 1 to < 5, got {pue}")
    if default is not None and default not in regions:
        problems.append(f"grid_default: {default!r} is not a region of grid:")
    if problems:
        raise SpecError(shown, problems)
    assert idle is not None and pue is not None and default is not None
    return PowerDefaults(
        idle,
        idle_source or "",
        model_source or "",
        pue,
        pue_source or "",
        float(node),
        node_source or "",
        default,
        regions,
    )


@dataclass(frozen=True)
class PowerModel:
    """One device's board power: P = idle + (max - idle) x u, W."""

    idle_w: float
    max_w: float
    source: str  # where idle and max come from (defaults labelled)

    def power_w(self, activity: float) -> float:
        u = min(max(activity, 0.0), 1.0)
        return self.idle_w + (self.max_w - self.idle_w) * u


def power_model(device: Device) -> PowerModel | None:
    """The device's power model, or None where neither its file's power block nor its TDP
    gives a maximum."""
    d = power_defaults()
    p = device.power
    most = p.max_w if p is not None and p.max_w is not None else device.tdp_w
    if most is None:
        return None
    sources = []
    if p is not None and p.max_w is not None:
        sources.append(f"max {most:g} W: {p.source}")
    else:
        sources.append(f"max {most:g} W: the TDP of {device.key}'s file")
    if p is not None and p.idle_w is not None:
        idle = p.idle_w
        sources.append(f"idle {idle:g} W: {p.source}")
    else:
        idle = d.idle_fraction * most
        sources.append(f"idle {idle:g} W: default, {d.idle_fraction:g} x max ({d.idle_source})")
    return PowerModel(idle, most, "; ".join(sources))


def no_power_reason(device: Device) -> str:
    return (
        f"{device.key} has no TDP or power block in its file: no power model "
        "(add power: {idle: W, max: W, source: ...})"
    )


@dataclass(frozen=True)
class Site:
    """Where the devices run: the PUE, a node's non-accelerator power per device and the
    grid's carbon intensity (location-based), each with where it comes from."""

    pue: float
    node_power_w: float
    grid_g_per_kwh: float
    grid: str  # the region's name, or "given"
    sources: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "pue": self.pue,
            "node_power_w_per_device": self.node_power_w,
            "grid_g_co2_per_kwh": self.grid_g_per_kwh,
            "grid": self.grid,
            "carbon_basis": "location-based (the grid's average intensity; operational only)",
            "sources": dict(self.sources),
        }


def site(
    pue: float | None = None, node_power_w: float | None = None, grid: str | float | None = None
) -> Site:
    """The site of a run: each value given, else its sourced default. `grid`: gCO2eq/kWh
    (a number), or a region of hardware/defaults/power.yaml."""
    d = power_defaults()
    if pue is not None and not (isinstance(pue, int | float) and 1 <= pue < 5):
        raise FieldError("pue", pue, "facility / IT energy, from 1 to < 5 (1.1: a hyperscale site)")
    if node_power_w is not None and not (
        isinstance(node_power_w, int | float) and 0 <= node_power_w < 1e5
    ):
        raise FieldError("node_power", node_power_w, "watts per device, from 0 to < 100,000")
    name = d.grid_default if grid is None else str(grid).strip()
    if name.lower() in d.grid:
        region = d.grid[name.lower()]
        intensity, label, grid_source = region.g_per_kwh, region.name, region.source
    else:
        try:
            intensity = float(name)
        except ValueError:
            raise FieldError(
                "grid_intensity",
                name,
                f"gCO2eq/kWh (a number from 0 to 2000) or a region: {', '.join(sorted(d.grid))}",
            ) from None
        if not 0 <= intensity <= 2000:
            raise FieldError("grid_intensity", name, "gCO2eq/kWh from 0 to 2000")
        label, grid_source = "given", "--grid-intensity"
    return Site(
        pue=d.pue if pue is None else float(pue),
        node_power_w=d.node_power_w if node_power_w is None else float(node_power_w),
        grid_g_per_kwh=intensity,
        grid=label,
        sources=(
            ("pue", d.pue_source if pue is None else "--pue"),
            ("node_power", d.node_power_source if node_power_w is None else "--node-power"),
            ("grid", grid_source),
            ("power_model", d.model_source),
        ),
    )


@dataclass(frozen=True)
class Energy:
    """What `devices` devices draw over `seconds` at activity `utilization`: J and W of the
    boards, of the nodes around them, and of the facility (x PUE); gCO2eq of the facility's
    energy at the site's grid. None figures with the reason where the device has no power
    model."""

    seconds: float
    devices: int
    utilization: float | None
    device_power_w: float | None  # one device's board
    device_energy_j: float | None  # all boards
    node_energy_j: float | None  # the nodes' other parts, all devices
    energy_j: float | None  # the facility's: (boards + nodes) x PUE
    co2_g: float | None
    site: Site
    source: str = ""
    reason: str = ""

    @property
    def average_power_w(self) -> float | None:
        """The facility's average power over the span, all devices."""
        if self.energy_j is None or self.seconds <= 0:
            return None
        return self.energy_j / self.seconds

    def per(self, units: float) -> float | None:
        """Facility joules per unit of work (a token, a sample) over the span."""
        if self.energy_j is None or units <= 0:
            return None
        return self.energy_j / units

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "devices": self.devices,
            "utilization": self.utilization,
            "device_power_w": self.device_power_w,
            "device_energy_j": self.device_energy_j,
            "node_energy_j": self.node_energy_j,
            "energy_j": self.energy_j,
            "energy_kwh": None if self.energy_j is None else self.energy_j / J_PER_KWH,
            "average_power_w": self.average_power_w,
            "co2_kg": None if self.co2_g is None else self.co2_g / 1e3,
            "power_source": self.source or None,
            "reason": self.reason or None,
            "site": self.site.as_dict(),
        }


def iteration_energy(
    device: Device, seconds: float, bound_s: float, devices: int, at: Site | None = None
) -> Energy:
    """The energy of `seconds` of work on `devices` devices of `device` whose roofline bound
    is `bound_s` (the activity u = bound_s / seconds): one serving iteration (the simulator
    passes its expected and bound seconds), one step, one request."""
    where = at if at is not None else site()
    model = power_model(device)
    if seconds <= 0 or bound_s < 0:
        raise FieldError("seconds", seconds, "a span > 0 with a bound >= 0")
    u = min(max(bound_s / seconds, 0.0), 1.0)
    if model is None:
        return Energy(seconds, devices, u, None, None, None, None, None, where, "",
                      no_power_reason(device))  # fmt: skip
    watts = model.power_w(u)
    boards = watts * seconds * devices
    nodes = where.node_power_w * seconds * devices
    facility = (boards + nodes) * where.pue
    co2 = facility / J_PER_KWH * where.grid_g_per_kwh
    return Energy(seconds, devices, u, watts, boards, nodes, facility, co2, where, model.source)


def scaled(e: Energy, times: float) -> Energy:
    """`e` repeated `times` times (a training run of `times` steps): the same power."""

    def m(v: float | None) -> float | None:
        return None if v is None else v * times

    return Energy(
        e.seconds * times, e.devices, e.utilization, e.device_power_w, m(e.device_energy_j),
        m(e.node_energy_j), m(e.energy_j), m(e.co2_g), e.site, e.source, e.reason,
    )  # fmt: skip


def step_energy(step: StepTime, device: Device, devices: int, at: Site | None = None) -> Energy:
    """One step of a layout (step.step_time) on its `devices` devices: the activity is the
    kernels' bound (StepTime.compute_s, one device's share) over the expected step time."""
    where = at if at is not None else site()
    if step.expected_s is None or step.compute_s is None or step.expected_s <= 0:
        return Energy(0.0, devices, None, None, None, None, None, None, where, "",
                      step.reason or "no expected step time")  # fmt: skip
    return iteration_energy(device, step.expected_s, step.compute_s, devices, where)


def result_energy(result: Result, at: Site | None = None) -> Energy:
    """`roofline run`'s step (one device's share of its layout) on all the layout's
    devices: activity = the layers' roofline bound / their expected time."""
    where = at if at is not None else site()
    devices = result.run.layout.devices
    return iteration_energy(
        result.device, result.total_expected_time_s, result.total_time_s, devices, where
    )


@dataclass(frozen=True)
class ServingEnergy:
    """A static batch of requests (serve.serve): the prefill, then a decode step for every
    further output token, on the replica's tensor x pipeline devices."""

    energy: Energy  # the whole batch of requests
    joules_per_output_token: float | None
    prefill_power_w: float | None  # one device's board
    decode_power_w: float | None

    def as_dict(self) -> dict[str, Any]:
        return self.energy.as_dict() | {
            "joules_per_output_token": self.joules_per_output_token,
            "prefill_device_power_w": self.prefill_power_w,
            "decode_device_power_w": self.decode_power_w,
        }


def serving_energy(r: ServeResult, at: Site | None = None) -> ServingEnergy:
    """J per output token and the average power of one replica serving batches of
    requests back to back: ttft at the prefill's activity, then (O - 1) x tpot at the
    decode step's."""
    where = at if at is not None else site()
    split = r.run.layout.model_split
    o = r.request.output_tokens
    times = (r.ttft_s, r.tpot_s, r.ttft_bound_s, r.tpot_bound_s)
    if None in times or not r.ttft_s or not r.tpot_s:
        e = Energy(0.0, split, None, None, None, None, None, None, where, "",
                   r.reason or "no expected time")  # fmt: skip
        return ServingEnergy(e, None, None, None)
    ttft, tpot, ttft_b, tpot_b = (float(t) for t in times)  # type: ignore[arg-type]
    first = iteration_energy(r.device, ttft, ttft_b, split, where)
    rest = iteration_energy(r.device, tpot, tpot_b, split, where)
    if first.energy_j is None or rest.energy_j is None:
        e = Energy(ttft + (o - 1) * tpot, split, None, None, None, None, None, None, where,
                   "", first.reason)  # fmt: skip
        return ServingEnergy(e, None, None, None)
    decode = scaled(rest, o - 1)

    def add(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a + b

    seconds = ttft + (o - 1) * tpot
    boards = add(first.device_energy_j, decode.device_energy_j)
    total = Energy(
        seconds,
        split,
        min((ttft_b + (o - 1) * tpot_b) / seconds, 1.0),
        None if boards is None else boards / seconds / split,
        boards,
        add(first.node_energy_j, decode.node_energy_j),
        add(first.energy_j, decode.energy_j),
        add(first.co2_g, decode.co2_g),
        where,
        first.source,
    )
    tokens = r.run.local_batch * o
    return ServingEnergy(total, total.per(tokens), first.device_power_w, rest.device_power_w)
