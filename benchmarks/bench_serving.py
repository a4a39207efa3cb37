"""The serving simulation and the SLO planner as users run them, end to end: each command a
fresh process (`python -m roofline`), its output written to a file, timed (best of 3 wall
clock runs) with the process's peak resident memory. Prints figures; asserts nothing.
Targets (issue 27, on this 2-core machine): 10^4 requests of Llama-3-8B on one H100
simulated in <= 1 s; 10^6 requests with memory flat (the iteration log is thinned, the
per-request records are 10^6 x a few numbers); the SLO planner over four device types in
<= 10 s.

Run: python benchmarks/bench_serving.py
"""

from __future__ import annotations

from pathlib import Path

from bench_cli import report


def commands(out: Path) -> dict[str, list[str]]:
    sim = ["simulate", "-m", "llama-3-8b", "--hw", "h100", "--rate", "20", "--prompt-tokens",
           "512", "--output-tokens", "256", "-f", "json"]  # fmt: skip
    return {
        f"simulate 10^{k} requests": [*sim, "--requests", str(10**k), "-o", str(out / f"s{k}.json")]
        for k in (3, 4, 5, 6)
    } | {
        "simulate 10^5 requests, parquet records": [
            *sim[:-2], "--requests", "100000", "-o", str(out / "r.parquet"),
        ],
        "serve --rate, 4 device types (simulated)": [
            "serve", "-m", "llama-3-8b", "--hw", "h100,a100,l40s,mi300x", "--dtype", "bf16",
            "--rate", "40", "--prompt-tokens", "1024", "--output-tokens", "256", "--ttft", "1",
            "--tpot", "0.04", "--ttft-percentile", "0.99", "--tpot-percentile", "0.99",
            "-f", "json", "-o", str(out / "plan.json"),
        ],
        "serve --rate, 4 device types (formula)": [
            "serve", "-m", "llama-3-8b", "--hw", "h100,a100,l40s,mi300x", "--dtype", "bf16",
            "--rate", "40", "--prompt-tokens", "1024", "--output-tokens", "256", "--ttft", "1",
            "--tpot", "0.04", "--planner", "formula", "-f", "json", "-o", str(out / "f.json"),
        ],
        "validate --load": ["validate", "--load", "-f", "json", "-o", str(out / "v.json")],
    }  # fmt: skip


def main() -> None:
    report(commands, width=44)


if __name__ == "__main__":
    main()
