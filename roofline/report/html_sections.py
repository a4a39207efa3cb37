"""The report page's text sections as static HTML, from report_data's dict: the summary,
the per-layer table (sorted by the page's script when a header is clicked) and the memory
tables. Readable without the script, and by people who read rather than look.

Every text is escaped; numbers are shown in scaled units named in the headers (GB = 1e9
bytes) and carried in SI units in `data-v` attributes for sorting.
"""

from __future__ import annotations

from html import escape
from typing import Any

from . import seconds, si

PARTS = {
    "params": "parameters",
    "gradients": "gradients",
    "optimizer": "optimizer state",
    "activations": "activations",
    "kv_cache": "KV cache",
}
RATE_UNITS = {"tokens_per_s": "tokens/s", "samples_per_s": "samples/s"}


def _text(value: Any, missing: str = "-") -> str:
    return missing if value is None else escape(str(value))


def _time(value: float | None) -> str:
    return "-" if value is None else seconds(value)


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _rate(value: float | None, unit: str) -> str:
    """199k tokens/s, 1.2M samples/s."""
    if value is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{prefix} {RATE_UNITS[unit]}"
    return f"{value:.3g} {RATE_UNITS[unit]}"


def _gb(value: float) -> str:
    """Bytes in GB (1e9 B), 3 significant digits: 80 GB, 0.687 GB."""
    return f"{value / 1e9:,.3g} GB"


def _row(label: str, cells: list[str], note: str = "") -> str:
    tds = "".join(f'<td class="dev-{j}">{c}</td>' for j, c in enumerate(cells))
    hint = f' title="{escape(note)}"' if note else ""
    return f"<tr><th scope=row{hint}>{escape(label)}</th>{tds}</tr>"


def summary_section(data: dict[str, Any]) -> str:
    """Whole-step figures per device, one column each, and a sentence per device."""
    devs = data["devices"]
    first = devs[0]["summary"]
    total = data["memory"]["breakdown"]["total"]
    intro = (
        f"<p>One step: <b>{si(first['flops'], 'FLOP')}</b> and "
        f"<b>{si(first['bytes'], 'B')}</b> moved (1 GB = 10<sup>9</sup> bytes), "
        f"arithmetic intensity <b>{first['intensity']:,.1f} FLOP/B</b>; "
        f"memory footprint <b>{_gb(total)}</b> per device.</p>"
    )
    s = [d["summary"] for d in devs]
    unit = s[0]["rate_unit"]
    dtype = escape(data["scenario"]["dtype"])
    rows = [
        _row(f"peak ({dtype})", [si(x["peak_flops_per_s"], "FLOP/s") for x in s]),
        _row("memory bandwidth", [si(x["memory_bandwidth_bytes_per_s"], "B/s") for x in s]),
        _row("ridge point", [f"{x['ridge_point']:,.1f} FLOP/B" for x in s]),
        _row("roofline bound (time)", [_time(x["time_s"]) for x in s]),
        _row("expected time", [_time(x["expected_time_s"]) for x in s]),
        _row(f"{RATE_UNITS[unit]}, expected", [_rate(x["rate_expected"], unit) for x in s]),
        _row(f"{RATE_UNITS[unit]}, at the bound", [_rate(x["rate_bound"], unit) for x in s]),
        _row(
            "MFU (expected)",
            [_pct(x["mfu"]) for x in s],
            "model FLOPs / (expected time x dense peak)",
        ),
        _row("share of peak at the bound", [_pct(x["fraction_of_peak"]) for x in s]),
        _row(
            "memory-bound share of the bound time", [_pct(x["memory_bound_time_share"]) for x in s]
        ),
        _row(
            "top layers (bound time)",
            [
                escape(
                    ", ".join(f"{t['name']} {100 * t['time_share']:.0f}%" for t in x["top_layers"])
                )
                for x in s
            ],
        ),
        _row(
            "why slower than the bound",
            [
                escape(
                    ", ".join(
                        f"{k} +{seconds(v)}"
                        for k, v in x["losses_s"].items()
                        if v is not None and v > 0.005 * x["time_s"]
                    )
                    or "nothing of note"
                )
                for x in s
            ],
        ),
        _row("memory capacity", [_gb(d["capacity_bytes"]) for d in devs]),
        _row("fits in memory", ["yes" if d["fits"] else "<b>no</b>" for d in devs]),
    ]
    heads = "".join(
        f'<th scope=col class="dev-{j}">{escape(d["key"])}</th>' for j, d in enumerate(devs)
    )
    sentences = []
    for j, d in enumerate(devs):
        x = d["summary"]
        fit = (
            f"fits in its {_gb(d['capacity_bytes'])}"
            if d["fits"]
            else f"does not fit in its {_gb(d['capacity_bytes'])} (needs {d['min_devices']} "
            f"devices sharded evenly; smallest layout {escape(d['min_layout'])})"
        )
        sentences.append(
            f'<li class="dev-{j}"><b>{escape(d["name"])}</b> ({escape(d["key"])}): '
            f"expected {_time(x['expected_time_s'])} a step "
            f"(roofline bound {_time(x['time_s'])}), "
            f"{_rate(x['rate_expected'], unit)}, MFU {_pct(x['mfu'])}; "
            f"{_pct(x['memory_bound_time_share'], 0)} of the bound time is memory-bound; "
            f"the run {fit}.</li>"
        )
    return (
        intro
        + f'<ul class="verdicts">{"".join(sentences)}</ul>'
        + '<table class="summary"><thead><tr><th scope=col>per step</th>'
        + heads
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _num(value: float | None, shown: str) -> str:
    v = "" if value is None else repr(float(value))
    return f'<td data-v="{v}">{shown}</td>'


def layer_table(data: dict[str, Any]) -> str:
    """Layers x (shared costs, then bound time, expected time, share, bound per device)."""
    devs = data["devices"]
    head = [
        ("layer", "text", "the layer (repeated blocks: one row, all repeats counted)"),
        ("kind", "text", ""),
        ("count", "num", "identical repeats in the row"),
        ("GFLOP", "num", "1 GFLOP = 1e9 FLOP, all repeats"),
        ("MB moved", "num", "1 MB = 1e6 bytes read and written, all repeats"),
        ("FLOP/B", "num", "arithmetic intensity"),
    ]
    cells = "".join(
        f'<th scope=col data-type="{t}" title="{escape(n)}">{escape(h)}</th>' for h, t, n in head
    )
    for j, d in enumerate(devs):
        key = escape(d["key"])
        for h, t in (
            ("bound", "num"),
            ("expected", "num"),
            ("% time", "num"),
            ("bound by", "text"),
        ):
            cells += f'<th scope=col data-type="{t}" class="dev-{j}">{key} {h}</th>'
    rows = []
    for i, layer in enumerate(data["layers"]):
        tds = [
            f'<td class="name">{escape(layer["name"])}</td>',
            f"<td>{escape(layer['kind'])}</td>",
            _num(layer["count"], str(layer["count"])),
            _num(layer["flops"], f"{layer['flops'] / 1e9:,.2f}"),
            _num(layer["bytes"], f"{layer['bytes'] / 1e6:,.2f}"),
            _num(layer["intensity"], _text(layer["intensity"] and f"{layer['intensity']:,.1f}")),
        ]
        for j, d in enumerate(devs):
            bound, expected = d["time_s"][i], d["expected_time_s"][i]
            share = bound / d["summary"]["time_s"] if bound is not None else None
            kind = "compute" if d["compute_bound"][i] else "memory"
            tds += [
                _num(bound, _time(bound)).replace("<td", f'<td class="dev-{j}"', 1),
                _num(expected, _time(expected)).replace("<td", f'<td class="dev-{j}"', 1),
                _num(share, _pct(share)).replace("<td", f'<td class="dev-{j}"', 1),
                f'<td class="dev-{j} {kind}">{kind}</td>',
            ]
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return (
        '<table class="sortable layers"><thead><tr>'
        + cells
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def memory_section(data: dict[str, Any]) -> str:
    """The footprint's parts, then the fit per device (the bars are drawn by the script)."""
    parts = data["memory"]["breakdown"]
    total = parts["total"] or 1.0
    rows = "".join(
        f"<tr><th scope=row>{PARTS[k]}</th><td>{parts[k] / 1e9:,.3f}</td>"
        f"<td>{parts[k] / 2**30:,.3f}</td><td>{100 * parts[k] / total:.1f}%</td></tr>"
        for k in PARTS
    )
    rows += (
        f"<tr class=total><th scope=row>total</th><td>{parts['total'] / 1e9:,.3f}</td>"
        f"<td>{parts['total'] / 2**30:,.3f}</td><td>100%</td></tr>"
    )
    breakdown = (
        '<table class="memory"><thead><tr><th scope=col>part</th><th scope=col>GB (1e9 B)</th>'
        "<th scope=col>GiB (2<sup>30</sup> B)</th><th scope=col>share</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    fit_rows = "".join(
        f'<tr class="dev-{j}"><th scope=row>{escape(d["key"])}</th>'
        f"<td>{d['capacity_bytes'] / 1e9:,.1f}</td>"
        f"<td>{100 * parts['total'] / d['capacity_bytes']:,.1f}%</td>"
        f"<td>{'yes' if d['fits'] else '<b>no</b>'}</td><td>{d['min_devices']}</td>"
        f"<td>{escape(d['min_layout'])}</td></tr>"
        for j, d in enumerate(data["devices"])
    )
    fits = (
        '<table class="fit"><thead><tr><th scope=col>device</th>'
        "<th scope=col>capacity GB</th><th scope=col>footprint / capacity</th>"
        "<th scope=col>fits</th><th scope=col>min devices</th>"
        "<th scope=col>smallest layout (dp x tp x pp, ZeRO)</th></tr></thead>"
        f"<tbody>{fit_rows}</tbody></table>"
    )
    note = ""
    if data["scenario"]["phase"] != "training":
        note = (
            "<p class=note>Inference keeps no gradients or optimizer state; "
            "<code>--phase training</code> shows a training step's footprint.</p>"
        )
    return breakdown + note + fits
