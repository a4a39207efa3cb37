"""`roofline report`: one self-contained HTML page, checked as a file (no external URL,
small, strict JSON whose figures match hand calculations, whole or nothing on disk) and
in a real headless Chromium (no console error, every mark drawn, device toggles, hover,
sorting, a screenshot that is not blank).

One report serves every test: BERT-Large, inference, batch 1, seq 512, fp16 on an A100
80GB and a V100 16GB, with a what-if grid of batch 1, 64, 1024, 8192 x seq 128, 512 that
runs out of memory in places (the hand calculation is in test_json_figures_by_hand).

The browser tests skip only when no Chromium and ChromeDriver are on PATH (Debian:
`apt-get install chromium chromium-driver`; .ci/run installs them)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roofline.cli import app

pytestmark = pytest.mark.slow  # headless Chromium

ARGS = ["report", "-m", "bert-large", "--hw", "a100,v100"]
GRID = ["--sweep-batch", "1,64,1024,8192", "--sweep-seq", "128,512"]
DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = CliRunner().invoke(app, [*ARGS, *GRID, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout == "" and f"wrote {out}" in res.stderr
    return out


@pytest.fixture(scope="module")
def data(report) -> dict:
    match = DATA.search(report.read_text(encoding="utf-8"))
    assert match, "no report-data element"
    return _strict(match.group(1))


# ---------------------------------------------------------------- the file
def test_self_contained_and_small(report):
    html = report.read_text(encoding="utf-8")
    assert report.stat().st_size < 5_000_000
    assert html.startswith("<!DOCTYPE html>")
    # nothing is fetched: every src/href is an in-page anchor or a data: URL, and outside
    # the data (text, never fetched) the only URL is the SVG namespace
    refs = re.findall(r"\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]*)", html, re.I)
    assert refs and all(r.startswith(("#", "data:")) for r in refs), refs
    assert not re.search(r"<script[^>]*\bsrc\s*=|@import", html, re.I)
    code = DATA.sub("", html)
    assert set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>)]*", code)) == {
        "http://www.w3.org/2000/svg"
    }
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]  # no temp file left
    for section in ("summary", "roofline", "layers", "whatif", "memory"):
        assert f'<section id="{section}">' in html


def test_json_figures_by_hand(data):
    layers = {x["name"]: x for x in data["layers"]}
    a100, v100 = data["devices"]
    assert (a100["key"], v100["key"]) == ("a100", "v100")
    # BERT-Large FFN up-projection: 24 layers x (2 m n k for m = 512 tokens, k = 1024,
    # n = 4096, plus a 512 x 4096 bias add) = 24 x 4,297,064,448 = 103,129,546,752 FLOP
    up = layers["block.ffn_up"]
    assert up["flops"] == 24 * (2 * 512 * 1024 * 4096 + 512 * 4096) == 103_129_546_752
    # bytes: fp16 weights 1024 x 4096, bias 4096, input 512 x 1024, output 512 x 4096
    assert up["bytes"] == 24 * 2 * (1024 * 4096 + 4096 + 512 * 1024 + 512 * 4096)
    # A100 SXM4 80GB datasheet: 312 TFLOP/s dense fp16, 2039 GB/s -> ridge 153.0 FLOP/B
    assert a100["ridge_point"] == pytest.approx(312e12 / 2039e9, rel=1e-12)
    assert v100["ridge_point"] == pytest.approx(125e12 / 900e9, rel=1e-12)  # V100 SXM2
    i = list(layers).index("block.ffn_up")
    # intensity 315 FLOP/B > 153: compute-bound, bound time = FLOPs / peak = 330.5 us
    assert a100["compute_bound"][i] is True
    assert a100["time_s"][i] == pytest.approx(103_129_546_752 / 312e12, rel=1e-12)
    assert a100["expected_time_s"][i] >= a100["time_s"][i]
    s = a100["summary"]
    assert s["params"] == 335_141_888  # BERT-Large (HF bert-large-uncased counts the same)
    assert s["time_s"] == pytest.approx(sum(a100["time_s"]))
    assert s["rate_unit"] == "tokens_per_s"
    assert s["rate_expected"] == pytest.approx(512 / s["expected_time_s"])
    assert s["mfu"] == pytest.approx(s["flops"] / (s["expected_time_s"] * 312e12))
    # memory: fp16 weights, no gradients or optimizer state at inference
    m = data["memory"]["breakdown"]
    assert m["params"] == 2 * 335_141_888
    assert m["gradients"] == m["optimizer"] == m["kv_cache"] == 0
    assert a100["fits"] and v100["fits"]


def test_whatif_grid_and_out_of_memory_by_hand(data):
    w = data["whatif"]
    assert w["x"]["values"] == [1, 64, 1024, 8192] and w["y"]["values"] == [128, 512]
    assert w["metric"] == "tokens_per_s"
    assert w["current"] == {"x": 0, "y": 1}  # batch 1, seq 512: the run itself
    a100, v100 = w["devices"]
    # the run's own cell is the run: one formula for both paths
    assert a100["expected_time_s"][1][0] == pytest.approx(
        data["devices"][0]["summary"]["expected_time_s"], rel=1e-9
    )
    # inference keeps the weights and the largest layer's input and output: at batch
    # 1024 x seq 512 the softmax over 16 heads of 512 x 512 fp16 scores, in and out:
    # 2 x 1024 x 16 x 512 x 512 x 2 B = 17.18 GB, + 0.670 GB of weights = 17.85 GB
    hand = 2 * 1024 * 16 * 512 * 512 * 2 + 2 * 335_141_888
    assert w["memory_bytes"][1][2] == hand
    assert hand > 16e9 and hand < 80e9  # over the V100's 16 GB, under the A100's 80 GB
    assert v100["fits"][1][2] is False and a100["fits"][1][2] is True
    for d in (a100, v100):
        assert all(isinstance(v, float) and v > 0 for row in d["rate"] for v in row)
        for mem_row, fit_row in zip(w["memory_bytes"], d["fits"]):
            assert fit_row == [m <= d["capacity_bytes"] for m in mem_row]
        assert d["rate"][0][1] == pytest.approx(64 * 128 / d["expected_time_s"][0][1])


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--hw", "a100,nosuchgpu"], "nosuchgpu"),
        (["--hw", "a100", "--sweep-batch", "1,0"], "--sweep-batch"),
        (["--hw", "a100", "--sweep-seq", "128,4096"], "--sweep-seq"),
        (["--hw", "a100", "--batch", "0"], "--batch"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_old_file(tmp_path, extra, field):
    out = tmp_path / "report.html"
    out.write_text("the previous report")
    args = ["report", "-m", "bert-large", *extra, "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roofline: error: ") and field in lines[0]
    assert "Traceback" not in res.output
    assert out.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_output_must_be_html_and_in_an_existing_folder(tmp_path):
    for target, text in ((tmp_path / "r.png", ".html"), (tmp_path / "no" / "r.html", "folder")):
        res = CliRunner().invoke(app, [*ARGS, "-o", str(target)])
        assert res.exit_code == 2 and text in res.stderr, res.output
    assert list(tmp_path.iterdir()) == []


def test_fixed_input_model_has_a_batch_only_heatmap(tmp_path):
    out = tmp_path / "cnn.html"
    res = CliRunner().invoke(app, ["report", "-m", "resnet-50", "--hw", "h100", "-o", str(out)])
    assert res.exit_code == 0, res.output
    w = _strict(DATA.search(out.read_text()).group(1))["whatif"]
    assert w["y"] == {"name": None, "values": [None]} and w["metric"] == "samples_per_s"
    res = CliRunner().invoke(
        app, ["report", "-m", "resnet-50", "--hw", "h100", "--sweep-seq", "64", "-o", str(out)]
    )
    assert res.exit_code == 2 and "--sweep-seq" in res.stderr


# ---------------------------------------------------------------- in a browser
def _browser_paths() -> tuple[str, str] | None:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    browser = next((p for p in map(shutil.which, names) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser():
    paths = _browser_paths()
    if paths is None:
        pytest.skip("no chromium and chromedriver on PATH (apt: chromium, chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1320,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    yield driver
    driver.quit()


POINTS = """
return Array.from(document.querySelectorAll('#roofline-chart .layer-point')).map((p) =>
  [+p.dataset.device, +p.dataset.layer, p.getAttribute('fill'), +p.dataset.flopsPerS]);
"""

VISIBLE = (
    "return Array.from(document.querySelectorAll(arguments[0]))"
    ".filter(e => getComputedStyle(e).display !== 'none').length"
)


def test_page_in_chromium(browser, report, data, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(report.resolve().as_uri())
    state = browser.execute_script("return window.__report")
    assert state and state["ready"], "the page's script did not finish"
    problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == [], problems
    assert browser.execute_script("return window.__reportErrors") == []

    # one point per layer and device (every BERT layer has FLOPs), one roof each
    n_layers, n_dev = len(data["layers"]), len(data["devices"])
    assert all(x["flops"] > 0 for x in data["layers"])
    assert browser.execute_script(VISIBLE, "#roofline-chart .layer-point") == 2 * n_layers
    assert len(browser.find_elements(By.CSS_SELECTOR, "#roofline-chart g.roof")) == n_dev
    # one meaning of the y axis, as in the PNG (issue 31): a layer at its FLOP/s at the
    # bound, coloured by its kind (the PNG's colours, a legend entry each), shaped by its
    # device (the toggles show the shapes); the whole step at the bound and as expected
    drawn = browser.execute_script(POINTS)
    kinds = {x["kind"] for x in data["layers"]}
    from roofline.plot import KIND_COLORS

    for j, i, fill, y in drawn:
        d, layer = data["devices"][j], data["layers"][i]
        assert fill.lower() == KIND_COLORS[layer["kind"]]
        assert y == pytest.approx(layer["flops"] / d["time_s"][i], rel=1e-9)
    assert {p[0] for p in drawn} == {0, 1}
    legend = browser.execute_script(
        "return Array.from(document.querySelectorAll('.kind-legend .kind-name'))"
        ".map(e => e.textContent)"
    )
    assert sorted(legend) == sorted(kinds)
    shapes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#device-toggles svg.shape path'))"
        ".map(e => e.getAttribute('d'))"
    )
    assert len(shapes) == n_dev and len(set(shapes)) == n_dev  # a shape each
    assert len(browser.find_elements(By.CSS_SELECTOR, "#roofline-chart .step-bound")) == n_dev
    assert len(browser.find_elements(By.CSS_SELECTOR, "#roofline-chart .step-expected")) == n_dev
    # heatmaps: a cell per scenario and device, the out-of-memory ones marked, a boundary
    cells = browser.find_elements(By.CSS_SELECTOR, "#whatif-charts rect.cell")
    assert len(cells) == 4 * 2 * n_dev
    oom = sum(not f for d in data["whatif"]["devices"] for row in d["fits"] for f in row)
    assert oom > 0
    assert len(browser.find_elements(By.CSS_SELECTOR, "#whatif-charts rect.cell.oom")) == oom
    assert len(browser.find_elements(By.CSS_SELECTOR, "#whatif-charts path.oom-boundary")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#memory-chart rect.mem-part")) == 2 * n_dev

    # untick the V100: its points, roof, heatmap and table columns go; tick it: back
    box = browser.find_element(By.CSS_SELECTOR, '#device-toggles input[data-device="1"]')
    box.click()
    assert browser.execute_script(VISIBLE, "#roofline-chart .layer-point") == n_layers
    assert browser.execute_script(VISIBLE, "#roofline-chart g.roof") == 1
    assert browser.execute_script(VISIBLE, "#whatif-charts figure.heatmap") == 1
    assert browser.execute_script(VISIBLE, "table.layers th.dev-1") == 0
    box.click()
    assert browser.execute_script(VISIBLE, "#roofline-chart .layer-point") == 2 * n_layers

    # hover a point: its figures in the tooltip
    point = browser.find_element(By.CSS_SELECTOR, "#roofline-chart .layer-point")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", point)
    ActionChains(browser).move_to_element(point).perform()
    tip = browser.find_element(By.ID, "tip")
    assert tip.is_displayed()
    name = data["layers"][int(point.get_attribute("data-layer"))]["name"]
    for text in (name, "FLOP/B", "bound time", "expected time", "bound by"):
        assert text in tip.text

    # sort the layer table by GFLOP: largest first, then smallest first
    header = browser.find_element(By.XPATH, "//table[contains(@class,'layers')]//th[.='GFLOP']")
    first = "return document.querySelector('table.layers tbody tr td').textContent"
    header.click()
    assert browser.execute_script(first) == "block.ffn_up"
    header.click()
    assert browser.execute_script(first) == min(data["layers"], key=lambda x: x["flops"])["name"]

    # a screenshot of the chart that is not blank
    browser.execute_script("document.getElementById('roofline').scrollIntoView()")
    shot = tmp_path / "roofline.png"
    assert browser.save_screenshot(str(shot))
    from matplotlib.image import imread

    pixels = imread(str(shot))[..., :3]
    ink = (pixels.min(axis=2) < 0.9).mean()  # share of pixels that are not near white
    assert pixels.std() > 0.05 and ink > 0.03, (pixels.std(), ink)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 0.3).mean()  # the roofs, points
    assert coloured > 0.002, coloured
    problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == [], problems


EVERY_POINT = """
const ps = Array.from(document.querySelectorAll('#roofline-chart .layer-point'));
const missed = [];
ps.forEach((p) => {
  p.scrollIntoView({block: 'center'});
  const b = p.getBoundingClientRect();
  const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
  if (hit !== p) missed.push(p.getAttribute('aria-label') + ' under ' +
    (hit && (hit.getAttribute('aria-label') || hit.getAttribute('class') || hit.tagName)));
});
return [ps.length, missed];
"""


@pytest.mark.parametrize("width", [400, 1400])
def test_page_at_phone_and_desktop_width(browser, tmp_path, width):
    """Issue 31: Llama-2-7B decode on A100 + H100 (24 of 28 points used to lie under the
    whole-step markers). At 400 and 1,400 CSS pixels: no sideways scroll of the page (the
    chart scales, tables scroll inside themselves, the layer table says so when it does),
    every layer point's centre is that point's own (elementFromPoint), and focusing a point
    with the keyboard shows its tooltip. Screenshots are left in tmp_path."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out = tmp_path / "decode.html"
    args = ["report", "-m", "llama-2-7b", "--hw", "a100,h100", "--phase", "decode"]
    res = CliRunner().invoke(app, [*args, "--context", "2048", "-o", str(out)])
    assert res.exit_code == 0, res.output
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        browser.get(out.resolve().as_uri())
        assert browser.execute_script("return window.__report")["ready"]
        wide, seen = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide <= seen, (wide, seen)
        n, missed = browser.execute_script(EVERY_POINT)
        assert n == 28 and missed == [], missed
        cue = browser.find_element(By.ID, "layers-cue")
        scrolls = browser.execute_script(
            "const s = document.getElementById('layers-scroll'); "
            "return s.scrollWidth > s.clientWidth + 1"
        )
        assert cue.is_displayed() == scrolls
        point = browser.find_element(By.CSS_SELECTOR, "#roofline-chart .layer-point")
        browser.execute_script("arguments[0].focus()", point)
        tip = browser.find_element(By.ID, "tip")
        assert tip.is_displayed() and "expected time" in tip.text
        point.send_keys(Keys.TAB)  # focus moves on: the tooltip follows the new point
        assert tip.is_displayed()
        browser.execute_script("document.getElementById('roofline').scrollIntoView()")
        assert browser.save_screenshot(str(tmp_path / f"roofline-{width}.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
