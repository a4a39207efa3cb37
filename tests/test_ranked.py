"""Issue 31: answers ranked the way planners read them. --sort and the best per question on
whatif and serve, each device at its 16-bit type, the traffic split of a run, reasons for
"-", and the longest context that fits."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from roofline.cli import app


def invoke(*args: str) -> object:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


def as_json(*args: str) -> object:
    return json.loads(invoke(*args, "-f", "json").stdout)  # type: ignore[attr-defined]


DECODE = ("whatif", "-m", "llama-3-8b", "--phase", "decode", "--batch", "1,8", "--context", "2048")


def test_whatif_sort_cost_ranks_fitting_rows_by_cost_then_the_unpriced():
    """--sort cost: rows that fit first, the priced ones by cost ascending (checked against
    the rows' own figures), devices without a price after them, then rows that do not fit."""
    data = as_json(*DECODE, "--hw", "a100,h100,t4,mi325x", "--sort", "cost")
    rows = data["scenarios"]
    fits = [r["fits"] for r in rows]
    assert fits == sorted(fits, reverse=True)  # True first
    priced = [r for r in rows if r["fits"] and r["cost_per_million_tokens"] is not None]
    assert [r["cost_per_million_tokens"] for r in priced] == sorted(
        r["cost_per_million_tokens"] for r in priced
    )
    first_unpriced = next(i for i, r in enumerate(rows) if r["cost_per_million_tokens"] is None)
    assert all(r["cost_per_million_tokens"] is None or not r["fits"] for r in rows[first_unpriced:])
    # a million tokens at the file's price: devices x price an hour / 3600 / tokens a second
    h100 = next(r for r in rows if r["device"] == "h100" and r["batch"] == 8)
    assert h100["cost_per_million_tokens"] == pytest.approx(
        h100["price_per_device_hour"] / 3600 / (8 / h100["expected_time_s"]) * 1e6
    )


def test_whatif_best_block_is_the_best_fitting_row_per_question():
    data = as_json(*DECODE, "--hw", "a100,h100,t4,mi300x")
    fit = [r for r in data["scenarios"] if r["fits"]]
    best = data["best"]
    assert best["fastest"] == max(fit, key=lambda r: r["tokens_per_s"])
    priced = [r for r in fit if r["cost_per_million_tokens"] is not None]
    assert best["cheapest"] == min(priced, key=lambda r: r["cost_per_million_tokens"])
    assert best["lowest_latency"] == min(fit, key=lambda r: r["expected_time_s"])
    # the table says the same in one line
    table = invoke(*DECODE, "--hw", "a100,h100,t4,mi300x", "--sort", "throughput").stdout  # type: ignore[attr-defined]
    f = best["fastest"]
    assert f"Best that fits: fastest {f['device']} fp16, batch {f['batch']}" in table
    assert f"({f['tokens_per_s']:,.1f} tokens/s)" in table
    assert "by tokens/s (samples/s), highest first" in table


def test_whatif_sort_throughput_and_latency_order():
    rows = as_json(*DECODE, "--hw", "a100,h100", "--sort", "throughput")["scenarios"]
    assert [r["tokens_per_s"] for r in rows] == sorted(
        (r["tokens_per_s"] for r in rows), reverse=True
    )
    rows = as_json(*DECODE, "--hw", "a100,h100", "--sort", "latency")["scenarios"]
    assert [r["expected_time_s"] for r in rows] == sorted(r["expected_time_s"] for r in rows)


def test_bad_sort_is_one_line_and_exit_2():
    for cmd in ((*DECODE, "--hw", "a100"), ("serve", "-m", "llama-3-8b", "--hw", "a100")):
        res = CliRunner().invoke(app, [*cmd, "--sort", "speed"])
        assert res.exit_code == 2
        assert res.stderr.strip().count("\n") == 0 and "--sort speed: allowed:" in res.stderr
    res = CliRunner().invoke(
        app, ["serve", "-m", "llama-3-8b", "--hw", "a100", "--rate", "5", "--sort", "cost"]
    )
    assert res.exit_code == 2 and "--sort cost" in res.stderr


def test_hw_all_runs_each_device_at_its_16_bit_type():
    """--hw all at the default --dtype: TPUs and Gaudi at bf16 (they have no fp16 peak),
    bf16 wherever a device has it, fp16 on the V100 and T4 (no bf16); devices with neither
    are named on stderr; an explicit --dtype fp16 keeps the old rule (fp16 devices only)."""
    res = CliRunner().invoke(app, [*DECODE, "--batch", "8", "--hw", "all", "-f", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    dtype = {r["device"]: r["dtype"] for r in data["scenarios"]}
    assert dtype["tpu-v5e"] == dtype["gaudi3"] == dtype["a100"] == dtype["h100"] == "bf16"
    assert dtype["v100"] == dtype["t4"] == "fp16"
    assert "k40" not in dtype and "k40" in res.stderr
    assert any("best 16-bit type" in n for n in data["notes"])
    table = invoke(*DECODE, "--batch", "8", "--hw", "all").stdout  # type: ignore[attr-defined]
    assert "best 16-bit type (bf16 where it has one, else fp16)" in table
    fixed = as_json(*DECODE, "--batch", "8", "--hw", "all", "--dtype", "fp16")["scenarios"]
    assert {r["dtype"] for r in fixed} == {"fp16"}
    assert not any(r["device"].startswith("tpu") for r in fixed)


def test_a_named_list_with_a_device_without_fp16():
    """whatif and plot --hw a100,tpu-v5e at the default fp16: each at its 16-bit type
    rather than an error; a single fp16 device keeps fp16."""
    data = as_json(*DECODE, "--hw", "a100,tpu-v5e")
    assert {(r["device"], r["dtype"]) for r in data["scenarios"]} == {
        ("a100", "bf16"),
        ("tpu-v5e", "bf16"),
    }
    assert {r["dtype"] for r in as_json(*DECODE, "--hw", "a100")["scenarios"]} == {"fp16"}


def test_plot_mixed_devices_draws_each_at_its_16_bit_type(tmp_path):
    out = tmp_path / "mixed.png"
    res = CliRunner().invoke(
        app, ["plot", "-m", "llama-3-8b", "--hw", "a100,h100,mi300x,tpu-v5e", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000


def test_serve_sort_best_for_and_hw_all():
    args = ("serve", "-m", "llama-3-8b", "--hw", "a100,h100,l4,mi300x", "--batch", "8")
    rows = as_json(*args, "--sort", "throughput")
    rates = [r["output_tokens_per_s"] for r in rows]
    assert rates == sorted(rates, reverse=True)
    assert rows[0]["best_for"][0] == "fastest"
    priced = [r for r in rows if r["cost_per_million_output_tokens"] is not None]
    cheapest = min(priced, key=lambda r: r["cost_per_million_output_tokens"])
    assert "cheapest" in cheapest["best_for"]
    quickest = min(rows, key=lambda r: r["tpot_s"])
    assert "lowest_latency" in quickest["best_for"]
    table = invoke(*args, "--sort", "cost").stdout  # type: ignore[attr-defined]
    assert f"cheapest {cheapest['device']} fp16" in table
    assert (
        f"({cheapest['cost_per_million_output_tokens']:,.2f} USD a million output tokens)" in table
    )
    every = as_json("serve", "-m", "llama-3-8b", "--hw", "all")
    dtype = {r["device"]: r["dtype"] for r in every}
    assert dtype["tpu-v5e"] == "bf16" and dtype["t4"] == "fp16"
    assert next(r for r in every if r["device"] == "tpu-v5e")["tpot_s"] is not None


def test_run_traffic_split_by_hand():
    """Llama-2-70B decode, batch 8, context 4096, tp 2, on one H100 of the two: the KV
    cache read is 80 layers x 8 KV heads x 128 x 2 (K, V) x 4,097 tokens x 8 samples x
    2 bytes / 2 ranks; the weights read are every parameter but the embedding table's
    (only 8 rows of 8,192 looked up) at 2 bytes, / 2 ranks; the three add to the total."""
    s = as_json(
        "run", "-m", "llama-2-70b", "--hw", "h100", "--phase", "decode", "--batch", "8",
        "--context", "4096", "--tp", "2",
    )["summary"]  # fmt: skip
    split = s["bytes_by_kind"]
    assert split["kv_cache"] == 80 * 8 * 128 * 2 * 4097 * 8 * 2 / 2
    assert split["weights"] == 2 * (68_976_648_192 - 32_000 * 8192 + 8 * 8192) / 2
    assert sum(split.values()) == pytest.approx(s["bytes"], rel=1e-12)
    table = invoke(
        "run", "-m", "llama-2-70b", "--hw", "h100", "--phase", "decode", "--batch", "8",
        "--context", "4096",
    ).stdout  # type: ignore[attr-defined]  # fmt: skip
    assert "137 GB weights, 10.7 GB KV cache, 1.76 GB activations" in table


def test_training_split_has_no_kv_cache():
    s = as_json("run", "-m", "gpt2", "--hw", "a100", "--phase", "training", "--batch", "2")
    assert s["summary"]["bytes_by_kind"]["kv_cache"] == 0


def test_time_to_train_dash_has_its_reason():
    args = ("whatif", "-m", "gpt2", "--hw", "a100", "--phase", "training", "--batch", "2")
    table = invoke(*args, "--tokens", "1e9").stdout  # type: ignore[attr-defined]
    assert "- (needs --utilization)" in table
    assert "time to train '-': needs --utilization" in table
    data = as_json(*args, "--tokens", "1e9")
    assert any("needs --utilization" in n for n in data["notes"])


def test_longest_context_by_hand():
    """Llama-3-8B at batch 16 on a 24 GiB card (the A10): the KV cache holds 32 layers x 8
    KV heads x 128 x 2 (K, V) x 2 bytes x 16 samples = 2,097,152 bytes a token, beside the
    16.06 GB of weights and the step's activations. The answer c fits and c + 1 does not,
    by the memory command's own breakdown and the KV cache by hand; at batch 4 the model's
    8,192 positions end it first (8,191 cached + the new token)."""
    rows = as_json(
        "whatif", "-m", "llama-3-8b", "--hw", "a10", "--batch", "4,16", "--max-context"
    )["longest_context"]  # fmt: skip
    short, long_ = rows[1], rows[0]
    assert (long_["batch"], long_["max_context"], long_["limited_by"]) == (4, 8191, "model")
    c = short["max_context"]
    assert short["limited_by"] == "memory" and short["capacity_bytes"] == 24 * 2**30
    per_token = 32 * 8 * 128 * 2 * 2 * 16

    def breakdown(context: int) -> dict[str, float]:
        out = as_json(
            "memory", "-m", "llama-3-8b", "--hw", "a10", "--phase", "decode", "--batch", "16",
            "--context", str(context),
        )  # fmt: skip
        return out["breakdown"]  # type: ignore[no-any-return]

    at, past = breakdown(c), breakdown(c + 1)
    assert at["kv_cache"] == per_token * (c + 1)
    assert at["total"] <= 24 * 2**30 < past["total"]
    assert short["memory_bytes_per_device"] == at["total"]
    # the closed form with the (small) activations read off: the same answer
    room = 24 * 2**30 - at["params"] - at["activations"]
    assert c == room // per_token - 1
    table = invoke("whatif", "-m", "llama-3-8b", "--hw", "a10", "--batch", "16", "--max-context")
    assert f"{c:,}" in table.stdout  # type: ignore[attr-defined]


def test_longest_context_refusals():
    for extra, word in ((("--context", "100"), "--context"), (("--phase", "training"), "--phase")):
        res = CliRunner().invoke(
            app, ["whatif", "-m", "llama-3-8b", "--hw", "a10", "--max-context", *extra]
        )
        assert res.exit_code == 2 and word in res.stderr, res.output
    res = CliRunner().invoke(
        app, ["whatif", "-m", "llama-2-70b", "--hw", "a10", "--max-context", "-f", "json"]
    )
    row = json.loads(res.stdout)["longest_context"][0]
    assert row["max_context"] == 0 and row["limited_by"] == "memory"


README = __import__("pathlib").Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("command", ["--sort cost", "--max-context"])
def test_readme_planner_examples_match_the_command(command, monkeypatch):
    """README's planner questions (3 and 5): the fenced block whose command has `command`
    is what the command prints, row for row (at the README's width)."""
    import shlex

    blocks = README.read_text().split("```")
    block = next(b for b in blocks[1::2] if b.strip().startswith("$ roofline") and command in b)
    lines = block.strip().splitlines()
    args = shlex.split(lines[0].removeprefix("$ roofline "))
    monkeypatch.setenv("COLUMNS", "200")
    out = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for line in lines[1:]:
        assert line in out.stdout, line
