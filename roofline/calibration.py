"""The expected-time model's two fitted parameters, and how they are fitted.

`training_sustained` and `inference_sustained` (hardware/defaults/calibration.yaml) are the
share of the per-kernel expected throughput that a whole step sustains end to end: a training
step (clocks under a sustained power limit, the framework's gaps between kernels, kernels
below the best-shape GEMM) and an inference step, prefill or decode, as a serving stack runs
it (the scheduler, sampling, detokenization and the host's gaps between steps). Each divides
the compute, recompute and bubble parts of its step (`step.assemble`); the communication
parts are not scaled. RunConfig.sustained overrides both (1: off); RunConfig.ideal turns
them off with every other efficiency term. Layer tables (`roofline run`) divide each layer
by the share and show the difference as the loss "step overhead (fitted)".

Each is fitted on part of its measured runs and reported on the rest (`fit`): the training
(serving) runs of workloads/runs/ sorted by key, those at even positions form the fit half,
those at odd positions are held out. A run measured better than its roofline bound (its file
cannot describe how it ran) is kept in the set but not fitted on: no share <= 1 reaches it.
The fit minimises the sum of absolute log errors over a grid of GRID_STEP (least absolute
deviations: the reported figure is the median absolute error, and a run whose error comes
from something the model lacks, such as a serving stack's fixed cost per step, should not
drag the share of every other run as a squared loss lets it); it needs no new step
evaluation per grid point, because a step's expected time is C / s + K in the sustained share
s (C: the scaled parts, K: communication).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from ._paths import data_dir
from ._schema import Fields, Problems
from ._yaml import load_yaml_mapping
from .errors import SpecError

GRID_STEP = 0.005
SCALED_PARTS = ("compute", "recompute", "bubble")


@dataclass(frozen=True)
class Calibration:
    training_sustained: float
    inference_sustained: float
    fitted_on: str
    source: str

    def shipped(self, kind: str) -> float:
        """The share for `kind` runs: training or serving."""
        return self.training_sustained if kind == "training" else self.inference_sustained


@cache
def calibration() -> Calibration:
    """The shipped calibration (read once, when first needed)."""
    shown = "hardware/defaults/calibration.yaml"
    data = load_yaml_mapping(data_dir("hardware") / "defaults" / "calibration.yaml", shown)
    problems = Problems()
    f = Fields(data, problems)
    values = {}
    for key in ("training_sustained", "inference_sustained"):
        value = f.number(key)
        if value is not None and not 0 < value <= 1:
            problems.append(f"{key}: a share from 0 to 1, got {value}")
        values[key] = value
    fitted_on, source = f.text("fitted_on"), f.text("source")
    f.done()
    training, inference = values["training_sustained"], values["inference_sustained"]
    if problems or training is None or inference is None or fitted_on is None or source is None:
        raise SpecError(shown, problems or ["could not be read"])
    return Calibration(training, inference, fitted_on, source)


def sustained_share(training: bool, ideal: bool, override: float | None) -> float:
    """The share that divides a step's compute parts (1: none)."""
    if ideal:
        return 1.0
    if override is not None:
        return override
    c = calibration()
    return c.training_sustained if training else c.inference_sustained


@dataclass(frozen=True)
class Fit:
    value: float
    fit_keys: tuple[str, ...]
    held_keys: tuple[str, ...]
    fit_median_abs_error: float
    held_median_abs_error: float
    # each run's signed relative error at the fitted share (predicted / measured - 1)
    errors: tuple[tuple[str, float], ...] = ()
    parameter: str = "training_sustained"
    # runs measured beyond their roofline bound: shown, not fitted on, not in the medians
    beyond_bound: tuple[str, ...] = ()


def split(keys: list[str]) -> tuple[list[str], list[str]]:
    """(fit, held out): the keys at even and at odd positions in sorted order."""
    ordered = sorted(keys)
    return ordered[0::2], ordered[1::2]


def figure(base: float, lower_is_better: bool, scaled: float, fixed: float, s: float) -> float:
    """A run's predicted figure at share s, from its figure at s = 1 (`base`): a time grows
    with the step, a throughput or utilization shrinks with it."""
    ratio = (scaled / s + fixed) / (scaled + fixed)
    return base * ratio if lower_is_better else base / ratio


def best_share(points: list[tuple[float, bool, float, float, float]]) -> float:
    """The grid share minimising the sum of absolute log errors of `points`:
    (figure at s = 1, lower is better, scaled seconds, fixed seconds, measured)."""
    best, best_cost = 1.0, math.inf
    steps = round(1 / GRID_STEP)
    for i in range(steps // 4, steps + 1):  # shares 0.25 .. 1
        s = round(i * GRID_STEP, 6)
        cost = sum(abs(math.log(figure(b, low, c, k, s) / m)) for b, low, c, k, m in points)
        if cost < best_cost - 1e-15:
            best, best_cost = s, cost
    return best
