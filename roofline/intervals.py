"""How far off an expected time may be: split conformal intervals from the validation
residuals of its kind (hardware/defaults/intervals.yaml).

A kind is a family of predictions whose errors have one source: `training` (a training
step, from the training runs of workloads/runs/), `serving` (a static serving step, prefill
or decode, and the requests made of them: the serving runs of workloads/runs/) and `load`
(the serving simulation under load: the figures of workloads/load_runs/).

A residual is log(measured time / predicted time). A time figure (a step, TTFT, TPOT, a
request's latency) gives it directly; a throughput or a utilization falls as the time
grows, so its residual is log(predicted / measured) (`time_residual`).

Split conformal prediction (Vovk et al. 2005; Lei et al. 2018, "Distribution-free
predictive inference for regression", section 2.2), its two tails apart: the n residuals of
the FIT half of a kind's runs (the half the sustained shares are fitted on: calibration.py
for training and serving, load_runs.split for load) sorted r(1) <= ... <= r(n); at nominal
coverage c the low end is r(k_lo), k_lo = floor((n + 1)(1 - c) / 2), and the high end
r(k_hi), k_hi = ceil((n + 1)(1 + c) / 2) (the finite-sample correction: n + 1, not n; a k
outside 1..n is an end at -inf or +inf: too few runs to bound that tail). A new prediction t
of the kind then lies in [t x e^r(k_lo), t x e^r(k_hi)] with probability at least c if its
residual is exchangeable with the fit half's (and at most c + 2 / (n + 1) on continuous
residuals). The held-out half measures the coverage (`validate --runs`,
`validate --runs --intervals`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from ._paths import data_dir
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .errors import SpecError

KINDS = ("training", "serving", "load")
COVERAGE = 0.8  # the nominal coverage shipped
DIGITS = 4  # the factors are shipped rounded to this many decimals
# the simulation's figures that rise as time grows (their interval is the time's, turned over)
LOAD_RATES = frozenset({"output_tokens_per_s", "requests_per_s"})


def conformal_ends(residuals: Iterable[float], coverage: float) -> tuple[float, float]:
    """(low, high) log factors: the split conformal ends of `residuals` at `coverage`,
    -inf or +inf where the fit half has too few residuals to bound that tail."""
    r = sorted(residuals)
    n = len(r)
    k_lo = math.floor((n + 1) * (1 - coverage) / 2 + 1e-9)  # 1e-9: (n + 1) x 0.1 as written
    k_hi = math.ceil((n + 1) * (1 + coverage) / 2 - 1e-9)
    low = r[k_lo - 1] if 1 <= k_lo <= n else -math.inf
    high = r[k_hi - 1] if 1 <= k_hi <= n else math.inf
    return low, high


@dataclass(frozen=True)
class Band:
    """A kind's interval as factors of the prediction: measured / predicted time lies in
    [low_factor, high_factor] at `coverage`, from `runs` residuals of the fit half."""

    kind: str
    coverage: float
    low_factor: float
    high_factor: float
    runs: int


@dataclass(frozen=True)
class Interval:
    """An expected time's interval: [low, high] seconds (or the figure's own unit) at
    `coverage`, from the residuals of `kind`."""

    coverage: float
    low: float
    high: float
    kind: str

    def as_dict(self) -> dict[str, float | str]:
        return {"coverage": self.coverage, "low": self.low, "high": self.high, "kind": self.kind}


@dataclass(frozen=True)
class Intervals:
    bands: dict[str, Band]
    made_by: str
    source: str


@cache
def intervals() -> Intervals:
    """The shipped bands (read once, when first needed)."""
    shown = "hardware/defaults/intervals.yaml"
    data = load_yaml_mapping(data_dir("hardware") / "defaults" / "intervals.yaml", shown)
    problems = Problems()
    f = Fields(data, problems)
    coverage = f.number("coverage")
    if coverage is not None and not 0 < coverage < 1:
        problems.append(f"coverage: a share from 0 to 1, got {coverage}")
    bands = {}
    for kind in KINDS:
        k = f.mapping(kind)
        if k is None:
            continue
        low, high = k.number("low_factor"), k.number("high_factor")
        runs = k.integer("runs")
        k.done()
        if low is not None and high is not None and not low <= 1 <= high:
            problems.append(f"{kind}: low_factor <= 1 <= high_factor, got {low}, {high}")
        if low is not None and high is not None and runs is not None and coverage is not None:
            bands[kind] = Band(kind, coverage, low, high, runs)
    made_by, source = f.text("made_by"), f.text("source")
    f.done()
    if problems or made_by is None or source is None or len(bands) != len(KINDS):
        raise SpecError(shown, problems or ["could not be read"])
    return Intervals(bands, made_by, source)


def kind_of(phase: str) -> str:
    """The kind of a step of `phase`: training, or serving (inference, prefill, decode)."""
    return "training" if phase == "training" else "serving"


def interval(
    value: float | None, kind: str, *, lower_is_better: bool = True, band: Band | None = None
) -> Interval | None:
    """The interval of a predicted `value` of `kind` (None for no value): a time's is
    [t x low_factor, t x high_factor]; a throughput's (lower_is_better False) is
    [x / high_factor, x / low_factor]. `band`: the shipped one unless given."""
    if value is None or not math.isfinite(value):
        return None
    b = band if band is not None else intervals().bands[kind]
    if lower_is_better:
        low, high = value * b.low_factor, value * b.high_factor
    else:
        low, high = value / b.high_factor, value / b.low_factor
    return Interval(b.coverage, low, high, kind)


def expected_interval(
    time_s: float | None, phase: str, *, ideal: bool = False, sustained: float | None = None
) -> tuple[Interval | None, str]:
    """(the interval of an expected time of a step of `phase`, or None with the reason):
    none for the bound (`ideal`) nor for a sustained share of the user's own, which the
    residuals were not measured at."""
    if ideal:
        return None, "--ideal: the roofline bound, which the intervals do not describe"
    if sustained is not None:
        return None, "--sustained: the intervals hold at the fitted shares only"
    if time_s is None:
        return None, "no expected time"
    return interval(time_s, kind_of(phase)), ""


def time_residual(predicted: float, measured: float, lower_is_better: bool) -> float:
    """log(measured time / predicted time) of a figure: a time's ratio as it is, a
    throughput's (or a utilization's) turned over."""
    r = math.log(measured / predicted)
    return r if lower_is_better else -r


def inside(residual: float, band: Band) -> bool:
    """Whether a residual lies within the band (ends included)."""
    return math.log(band.low_factor) <= residual <= math.log(band.high_factor)


def load_intervals(stats: dict[str, float | None]) -> dict[str, Interval | None]:
    """The interval of each simulated figure under load (a simulation's stats, by the
    names of load_runs.MEASURED: seconds, and tokens or requests a second), of the `load`
    kind: the hook for `simulate` and `serve --rate` (a figure with no value: None)."""
    return {
        name: interval(value, "load", lower_is_better=name not in LOAD_RATES)
        for name, value in stats.items()
    }
