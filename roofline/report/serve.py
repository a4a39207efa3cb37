"""The serve command's answer (serve.ServeResult) as JSON, CSV rows and a table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import flat_interval, interval_fields, new_table, seconds, with_interval

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..intervals import Interval
    from ..serve import Plan, ServeResult
    from ..slo import SimPlan, Targets


def latency_intervals(r: ServeResult) -> dict[str, tuple[Interval | None, str]]:
    """{"ttft", "tpot"}: each latency's interval (the serving kind of intervals.yaml), or
    why none (no latency, the bound at --ideal, a --sustained share of one's own)."""
    from ..intervals import expected_interval

    return {
        name: expected_interval(value, r.run.phase, ideal=r.run.ideal, sustained=r.run.sustained)
        if value is not None
        else (None, r.reason or "no latency")
        for name, value in (("ttft", r.ttft_s), ("tpot", r.tpot_s))
    }


def serve_dict(r: ServeResult) -> dict[str, Any]:
    lay = r.run.layout
    (ttft, ttft_why), (tpot, tpot_why) = latency_intervals(r).values()
    return {
        "model": None,
        "device": r.device.key,
        "batch": r.run.batch,
        "prompt": r.request.prompt,
        "output": r.request.output_tokens,
        "dtype": r.run.dtype,
        "weights": r.run.weights or r.run.dtype,
        "kv_dtype": r.run.kv_dtype or r.run.dtype,
        "layout": {"tensor": lay.tensor, "pipeline": lay.pipeline, "devices": lay.model_split},
        "time_model": r.model,
        "ttft_s": r.ttft_s,
        "tpot_s": r.tpot_s,
        **interval_fields("ttft_interval", ttft, ttft_why),
        **interval_fields("tpot_interval", tpot, tpot_why),
        "ttft_bound_s": r.ttft_bound_s,
        "tpot_bound_s": r.tpot_bound_s,
        "output_tokens_per_s": r.output_tokens_per_s,
        "output_tokens_per_s_per_device": r.output_tokens_per_s_per_device,
        "max_concurrency": r.max_concurrency,
        "currency": r.device.price.currency if r.device.price else None,
        "price_per_device_hour": r.device.price.per_hour if r.device.price else None,
        "cost_per_million_output_tokens": r.cost_per_million_output_tokens,
        "memory": r.memory.as_dict(),
        "reserve": r.request.reserve,
        "fits": r.fits,
        "reason": r.reason or None,
    }


# how serve's rows are ranked (--sort): the figure and which way reads best
SORTS = {
    "throughput": "output tokens/s, highest first",
    "cost": "cost a million output tokens, lowest first",
    "latency": "time per output token (TPOT), lowest first",
    "ttft": "time to first token, lowest first",
}
# the best-per-question answers: the name, the figure it ranks by
QUESTIONS = (("fastest", "throughput"), ("cheapest", "cost"), ("lowest_latency", "latency"))


def _figure(r: ServeResult, by: str) -> float | None:
    value = {
        "throughput": r.output_tokens_per_s,
        "cost": r.cost_per_million_output_tokens,
        "latency": r.tpot_s,
        "ttft": r.ttft_s,
    }[by]
    if value is None:
        return None
    return -value if by == "throughput" else value


def rank_key(r: ServeResult, by: str) -> tuple[bool, bool, float]:
    """Those that fit first, then those with the figure, then the figure read best-first."""
    value = _figure(r, by)
    return (not r.fits, value is None, 0.0 if value is None else value)


def ranked(results: list[ServeResult], by: str | None) -> list[ServeResult]:
    """`results` for --sort `by` (stable); as given for None."""
    return results if by is None else sorted(results, key=lambda r: rank_key(r, by))


def best_of(results: list[ServeResult]) -> dict[str, ServeResult | None]:
    """Per question the result that answers it among those that fit and have the figure:
    the fastest (most output tokens/s), the cheapest (a million output tokens), the lowest
    latency (TPOT)."""
    best: dict[str, ServeResult | None] = {}
    for name, by in QUESTIONS:
        have = [r for r in results if r.fits and _figure(r, by) is not None]
        best[name] = min(have, key=lambda r: rank_key(r, by)) if have else None
    return best


def best_for(r: ServeResult, best: dict[str, ServeResult | None]) -> list[str]:
    """The questions `r` answers best (a row's `best_for` in JSON and CSV)."""
    return [name for name, b in best.items() if b is r]


def best_line(best: dict[str, ServeResult | None]) -> str:
    fast, cheap, quick = best["fastest"], best["cheapest"], best["lowest_latency"]
    if fast is None or fast.output_tokens_per_s is None:
        return "Best that fits: nothing fits"

    def who(r: ServeResult) -> str:
        lay = r.run.layout
        split = "" if lay.model_split == 1 else f" tp {lay.tensor} x pp {lay.pipeline}"
        return f"{r.device.key} {r.run.dtype}{split}"

    parts = [f"fastest {who(fast)} ({fast.output_tokens_per_s:,.0f} tokens/s)"]
    if cheap is None or cheap.cost_per_million_output_tokens is None:
        parts.append("cheapest: - (no fitting device has a price; give --price)")
    else:
        currency = cheap.device.price.currency if cheap.device.price else ""
        parts.append(
            f"cheapest {who(cheap)} ({cheap.cost_per_million_output_tokens:,.2f} {currency} a "
            "million output tokens)"
        )
    if quick is not None and quick.tpot_s is not None:
        parts.append(f"lowest latency {who(quick)} (TPOT {seconds(quick.tpot_s)})")
    return "Best that fits: " + "; ".join(parts)


def serve_rows(
    results: list[ServeResult], model: str, best: dict[str, ServeResult | None] | None = None
) -> list[dict[str, Any]]:
    best = best_of(results) if best is None else best
    rows = []
    for r in results:
        row = serve_dict(r) | {"model": model, "best_for": ";".join(best_for(r, best))}
        lay = row.pop("layout")
        memory = row.pop("memory")
        for name in ("ttft", "tpot"):
            row |= flat_interval(f"{name}_interval", row.pop(f"{name}_interval_s"))
        rows.append(
            row
            | {f"layout_{k}": v for k, v in lay.items()}
            | {f"memory_{k}_bytes": v for k, v in memory.items()}
        )
    return rows


def serve_table(
    results: list[ServeResult], title: str, notes: tuple[str, ...] = ()
) -> list[RenderableType]:
    table = new_table(
        title,
        (
            "device",
            "dtype",
            "layout",
            "TTFT",
            "TPOT",
            "tokens/s",
            "cost / M tokens",
            "max concurrency",
            "memory GB",
            "fits",
        ),
        left=("device", "dtype", "layout", "fits"),
    )
    for r in results:
        lay = r.run.layout
        iv = latency_intervals(r)
        table.add_row(
            r.device.key,
            r.run.dtype,
            f"tp {lay.tensor} x pp {lay.pipeline}",
            "-" if r.ttft_s is None else with_interval(r.ttft_s, iv["ttft"][0]),
            "-" if r.tpot_s is None else with_interval(r.tpot_s, iv["tpot"][0]),
            "-" if r.output_tokens_per_s is None else f"{r.output_tokens_per_s:,.0f}",
            "-"
            if r.cost_per_million_output_tokens is None
            else f"{r.cost_per_million_output_tokens:,.2f} {r.device.price.currency}",  # type: ignore[union-attr]
            f"{r.max_concurrency:,}",
            f"{float(r.memory.total) / 1e9:,.1f}",
            "yes" if r.fits else "no" + (f" ({r.reason})" if r.reason else ""),
        )
    note = (
        "Times from the expected-time model (roofline run --ideal: the bound); tokens/s: a "
        "static batch's output tokens over its whole requests (prefill and decode), per "
        "replica; under traffic: roofline simulate; cost of a million output tokens at the "
        "device's price an hour (its file's source, or --price) x the layout's devices; "
        "memory per device with every request at prompt + output tokens; max concurrency: "
        "requests whose paged KV cache fits beside the weights (GB = 1e9 bytes)."
    )
    items: list[RenderableType] = [table]
    if len(results) > 1:
        items.append(best_line(best_of(results)))
    if any(r.fits and r.cost_per_million_output_tokens is None for r in results):
        items.append("cost '-': the device file has no price; give --price")
    return [*items, *notes, note]


def plan_dict(p: Plan) -> dict[str, Any]:
    """One device type's plan; figures null (with `reason`) where nothing meets the SLOs;
    a rate past the ceiling on devices also gives the most the ceiling serves."""
    ok = not p.reason
    return {
        "model": None,
        "device": p.device.key,
        "tensor": p.tensor if ok else None,
        "concurrency_per_replica": p.concurrency if ok else None,
        "replicas": p.replicas if ok else None,
        "devices": p.devices if ok else None,
        "ttft_s": p.ttft_s if ok else None,
        "tpot_s": p.tpot_s if ok else None,
        "requests_per_s_per_replica": p.requests_per_s_per_replica if ok else None,
        "queue_wait_s": p.queue_wait_s if ok else None,
        "queue_wait_p99_s": p.queue_wait_p99_s if ok else None,
        "ttft_slo_on_wait": p.ttft_held_to if ok else None,
        "utilization": p.utilization if ok else None,
        "currency": p.device.price.currency if p.device.price and ok else None,
        "cost_per_million_output_tokens": p.cost_per_million_output_tokens if ok else None,
        "time_model": "expected",
        "reason": p.reason or None,
        # past the ceiling on devices (serve.MAX_DEVICES): the most requests/s it serves
        "max_requests_per_s": p.max_requests_per_s,
    }


def plan_table(plans: list[Plan], title: str) -> list[RenderableType]:
    table = new_table(
        title,
        (
            "device",
            "devices",
            "layout",
            "in flight",
            "TTFT",
            "of it queue (p99)",
            "TPOT",
            "busy",
            "req/s a replica",
            "cost / M tokens",
        ),
        left=("device", "layout"),
    )
    for p in plans:
        if p.reason:
            table.add_row(p.device.key, "-", p.reason, "-", "-", "-", "-", "-", "-", "-")
            continue
        cost = p.cost_per_million_output_tokens
        table.add_row(
            p.device.key,
            f"{p.devices:,}",
            f"{p.replicas:,} x tp {p.tensor}",
            f"{p.concurrency:,}",
            seconds(p.ttft_s),
            f"{seconds(p.queue_wait_s) if p.queue_wait_s > 0 else '0'} "
            f"({seconds(p.queue_wait_p99_s) if p.queue_wait_p99_s > 0 else '0'})",
            seconds(p.tpot_s),
            f"{p.utilization:.0%}",
            f"{p.requests_per_s_per_replica:,.2f}",
            "-" if cost is None else f"{cost:,.2f} {p.device.price.currency}",  # type: ignore[union-attr]
        )
    note = (
        "Continuous batching in steady state, expected-time model (roofline/serve.py plan): "
        "each replica keeps 'in flight' requests decoding and prefills each new prompt "
        "between steps; TPOT includes those prefills; TTFT is the mean wait for a free slot "
        "(Poisson arrivals, an M/M/c queue over replicas x in-flight slots) plus one "
        "prefill and a step; 'busy' is the arrival rate over what the replicas serve."
    )
    return [table, note]


SIM_FIGURES = tuple(
    f"{name}_{stat}_s" for name in ("ttft", "tpot", "e2e") for stat in ("mean", "p50", "p90", "p99")
)


def sim_plan_dict(p: SimPlan, targets: Targets) -> dict[str, Any]:
    """One device type's plan checked by simulation (slo.py); figures null (with
    `reason`) where nothing meets the targets."""
    ok = not p.reason and p.stats is not None
    stats = p.stats or {}
    per_replica = targets.rate / p.replicas if p.replicas else None
    load = None
    if per_replica is not None and p.max_rate_per_replica:
        load = per_replica / p.max_rate_per_replica
    out: dict[str, Any] = {
        "model": None,
        "device": p.device.key,
        "engine": p.engine,
        "requests_per_s": targets.rate,
        "ttft_target_s": targets.ttft_s,
        "ttft_held_at": targets.held(targets.ttft_quantile),
        "tpot_target_s": targets.tpot_s,
        "tpot_held_at": targets.held(targets.tpot_quantile),
        "tensor": p.tensor if ok else None,
        "replicas": p.replicas if ok else None,
        "devices": p.devices if ok else None,
        "requests_per_s_per_replica": per_replica if ok else None,
        # the most a replica takes within the targets (lambda*), and the load over it
        "max_requests_per_s_per_replica": p.max_rate_per_replica if ok else None,
        "load": load if ok else None,
    }
    for name in SIM_FIGURES:
        out[name] = stats.get(name) if ok else None
    out |= {
        "output_tokens_per_s": (stats.get("output_tokens_per_s") or 0) * p.replicas
        if ok and p.replicas and stats.get("output_tokens_per_s") is not None
        else None,
        "currency": p.device.price.currency if p.device.price and ok else None,
        "cost_per_million_output_tokens": p.cost_per_million_output_tokens if ok else None,
        "energy": p.energy if ok else None,
        "stats_interval": _intervals(p.stats) if ok and p.stats else None,
        "time_model": "simulated",
        "reason": p.reason or None,
        "max_requests_per_s": p.max_requests_per_s,
    }
    return out


def sim_plan_row(p: SimPlan, targets: Targets) -> dict[str, Any]:
    """sim_plan_dict as one flat CSV row: the energy block's figures as columns."""
    row = sim_plan_dict(p, targets)
    energy = row.pop("energy") or {}
    row.pop("stats_interval", None)  # JSON only: nested
    for key in ("joules_per_output_token", "co2_g_per_output_token",
                "deployment_average_power_w", "reason"):  # fmt: skip
        row[f"energy_{key}" if key == "reason" else key] = energy.get(key)
    return row


def sim_plan_table(plans: list[SimPlan], targets: Targets, title: str) -> list[RenderableType]:
    table = new_table(
        title,
        ("device", "devices", "layout", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
         "E2E p99", "load", "J / token", "cost / M tokens"),
        left=("device", "layout"),
    )  # fmt: skip
    for p in plans:
        row = sim_plan_dict(p, targets)
        if p.reason:
            table.add_row(p.device.key, "-", p.reason, *(["-"] * 8))
            continue
        cost = row["cost_per_million_output_tokens"]
        table.add_row(
            p.device.key,
            f"{p.devices:,}",
            f"{p.replicas:,} x tp {p.tensor}",
            *(seconds(row[k]) if row[k] is not None else "-" for k in
              ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "e2e_p99_s")),
            f"{row['load']:.0%}",
            _joules(p.energy),
            "-" if cost is None else f"{cost:,.2f} {row['currency']}",
        )  # fmt: skip
    note = (
        f"Checked by simulation (roofline/slo.py; {p.engine if plans else 'vllm'} engine "
        "defaults, iteration by iteration, expected-time model): each replica takes a "
        "Poisson stream at the rate / replicas; 'load' is that rate over the most a replica "
        "takes within the targets. Percentiles over 2,000 simulated requests. J / token: "
        "the facility's energy an output token (the power model of roofline/energy.py, its "
        "PUE; '-': the device file has no power data)."
    )
    return [table, note]


def _intervals(stats: dict[str, float | None]) -> dict[str, Any]:
    from ..simulate import stat_intervals

    return stat_intervals(stats)


def _joules(energy: dict[str, Any] | None) -> str:
    value = None if energy is None else energy.get("joules_per_output_token")
    return "-" if value is None else f"{value:.3g}"
