"""Device database: every file loads, spot checks against vendor datasheets, strict validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roofline.errors import RooflineError, SpecError, UnknownNameError
from roofline.hardware import get_device, list_devices, load_device_file

GB, GiB, T = 1e9, 2**30, 1e12


def test_every_reference_device_is_in_the_database(repo):
    # the 32 rows of shared/reference/hardware-datasheets.csv, by our file names
    expected = {
        "p100",
        "v100",
        "v100-32gb",
        "t4",
        "a100-40gb",
        "a100",
        "a100-pcie-40gb",
        "a100-pcie-80gb",
        "a10",
        "l4",
        "l40s",
        "h100",
        "h100-pcie",
        "h200",
        "b200",
        "gb200",
        "mi100",
        "mi250x",
        "mi300x",
        "mi325x",
        "tpu-v2",
        "tpu-v3",
        "tpu-v4",
        "tpu-v5e",
        "tpu-v5p",
        "tpu-v6e",
        "gaudi2",
        "gaudi3",
        "gtx-580",
        "k40",
        "titan-x",
        "xeon-phi-7250",
    }
    keys = {d.key for d in list_devices()}
    assert expected <= keys
    assert len(list(Path(repo, "hardware").glob("*.yaml"))) == len(keys)


def test_every_device_names_a_source_and_positive_figures():
    for d in list_devices():
        assert len(d.source) > 20, d.key
        assert d.memory_bandwidth_bytes_per_s > 0 and d.memory_capacity_bytes > 0
        assert d.peak_flops_per_s and all(v > 0 for v in d.peak_flops_per_s.values())


# Vendor datasheet figures (dense), written here independently of the YAML files.
DATASHEET = [
    # NVIDIA A100 80GB SXM datasheet: FP16 tensor 312 (624 sparse), TF32 156, 2039 GB/s, 400 W
    ("a100", "fp16", 312 * T, 2039 * GB, 80 * GiB),
    ("a100", "tf32", 156 * T, 2039 * GB, 80 * GiB),
    ("a100", "fp32", 19.5 * T, 2039 * GB, 80 * GiB),
    # A100 40GB SXM: 1555 GB/s (Fig. 1 of "AI and Memory Wall" plots this point)
    ("a100-40gb", "bf16", 312 * T, 1555 * GB, 40 * GiB),
    # H100 SXM5 datasheet prints 1,979 TFLOPS* FP16 "with sparsity": dense is 989.4
    ("h100", "fp16", 989.4 * T, 3350 * GB, 80 * GiB),
    ("h100", "fp8", 1978.9 * T, 3350 * GB, 80 * GiB),
    ("h200", "bf16", 989.4 * T, 4800 * GB, 141 * GiB),
    # V100 SXM2 datasheet: 125 TFLOPS tensor, 900 GB/s; no sparsity on Volta
    ("v100", "fp16", 125 * T, 900 * GB, 16 * GiB),
    ("v100-32gb", "fp16", 125 * T, 900 * GB, 32 * GiB),
    # AMD MI300X data sheet: FP16 dense 1307.4, 5.3 TB/s, 192 GB
    ("mi300x", "fp16", 1307.4 * T, 5300 * GB, 192 * GiB),
    # Cloud TPU v4 docs: 275 TFLOPS bf16 per chip, 32 GiB, 1200 GBps
    ("tpu-v4", "bf16", 275 * T, 1200 * GB, 32 * GiB),
    ("tpu-v2", "bf16", 45 * T, 600 * GB, 16 * GiB),
    # HGX B200 (1000 W): BF16 dense 2.25 PFLOPS, 7.7 TB/s, 180 GB
    ("b200", "bf16", 2250 * T, 7700 * GB, 180 * GiB),
    ("gaudi3", "bf16", 1835 * T, 3670 * GB, 128 * GiB),
    ("gtx-580", "fp32", 1.581 * T, 192.4 * GB, 1.5 * GiB),
]


@pytest.mark.parametrize(("key", "dtype", "peak", "bw", "capacity"), DATASHEET)
def test_datasheet_spot_checks(key, dtype, peak, bw, capacity):
    d = get_device(key)
    assert d.peak(dtype) == pytest.approx(peak, rel=1e-9)
    assert d.memory_bandwidth_bytes_per_s == pytest.approx(bw, rel=1e-9)
    assert d.memory_capacity_bytes == pytest.approx(capacity, rel=1e-9)


def test_nvidia_tensor_peaks_are_dense_not_sparse():
    # hardware-notes.md check 1: on Ampere and later the dense FP16 tensor rate is twice the
    # dense TF32 rate (B200 rounds: 2.25 PF vs 1.1 PF); a file holding the sparse figure
    # of one of them (1979 for H100 FP16) would be off by 2x here.
    for key in ("a100", "a100-40gb", "h100", "h100-pcie", "h200", "b200", "gb200", "l40s"):
        d = get_device(key)
        assert d.peak("fp16") == pytest.approx(2 * d.peak("tf32"), rel=0.03), key
    assert get_device("h100").peak("fp16") < 1000 * T


def test_ridge_point_is_peak_over_bandwidth():
    # A100 80GB at fp16: 312e12 / 2039e9 = 153.0 FLOP/byte
    assert get_device("a100").ridge_point("fp16") == pytest.approx(153.016, rel=1e-4)


def test_aliases_resolve_to_documented_variants():
    assert get_device("a100-80gb").key == "a100"
    assert get_device("A100").name == "NVIDIA A100 SXM4 80GB"
    assert get_device("h100-sxm").name == "NVIDIA H100 SXM5 80GB"
    assert get_device("trillium").key == "tpu-v6e"
    assert get_device("knl").key == "xeon-phi-7250"


def test_unknown_device_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown device 'h10'; did you mean .*h100"):
        get_device("h10")


def test_dtype_the_device_lacks_is_a_clear_error():
    with pytest.raises(RooflineError, match=r"has no fp8 peak; it supports fp64, fp32, fp16, int8"):
        get_device("v100").peak("fp8")


GOOD = Path(__file__).resolve().parent.parent / "hardware" / "a100.yaml"


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = GOOD.read_text()
    assert old in text
    path = tmp_path / "chip.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  bandwidth: 2039 GB/s", "  bandwidth: -1 GB/s", r"memory\.bandwidth: must be > 0"),
        ("  bandwidth: 2039 GB/s", "  bandwidth: 2039", r"memory\.bandwidth: expected a number"),
        ("  bandwidth: 2039 GB/s", "  bandwidth: 2039 GB", r"memory\.bandwidth: unknown unit"),
        (
            "  capacity: 80 GiB  # JEDEC: a memory size in GB is binary (2^30 bytes)\n",
            "",
            r"memory\.capacity: missing",
        ),
        ("tdp: 400 W", "tdp: 400 W\ntdp: 500 W", r"duplicate key 'tdp'"),
        ("tdp: 400 W", "tpd: 400 W", r"tdp: missing.*tpd: unknown field; did you mean 'tdp'"),
        ("  fp16: 312 TFLOP/s", "  fp17: 312 TFLOP/s", r"peak\.fp17: unknown field"),
        ("  counted: bidirectional", "  counted: both", r"interconnect\.counted: must be one of"),
        ('release: "2020-11"', "release: 2020-13", r"release: expected a date"),
        ("name: ", "name: [1]\nx: ", r"name: expected non-empty text"),
    ],
)
def test_validation_names_file_and_field(tmp_path, old, new, message):
    path = _variant(tmp_path, old, new)
    with pytest.raises(SpecError) as info:
        load_device_file(path)
    text = str(info.value)
    assert text.startswith(str(path))
    assert re.search(message, text), text
    assert "\n" not in text


def test_validation_collects_every_problem(tmp_path):
    path = _variant(tmp_path, "  bandwidth: 2039 GB/s", "  bandwidth: -5 GB/s")
    path.write_text(path.read_text().replace("tdp: 400 W", "tdp: hot"))
    with pytest.raises(SpecError) as info:
        load_device_file(path)
    assert len(info.value.problems) == 2


def test_malformed_yaml_and_non_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad\.yaml: line \d+: malformed YAML"):
        load_device_file(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="top level must be a mapping"):
        load_device_file(bad)


def test_yaml_is_loaded_safely(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        load_device_file(bad)


def test_user_file_via_path(tmp_path):
    path = _variant(tmp_path, "  bandwidth: 2039 GB/s", "  bandwidth: 4 TB/s")
    d = get_device(str(path))
    assert d.memory_bandwidth_bytes_per_s == 4e12
    assert d.key == "chip"


@pytest.mark.parametrize(
    "key, sparse_fp16_fp32_acc, fp32, gib, bandwidth, tdp",
    [
        # NVIDIA Ada whitepaper, RTX 4090: FP16 tensor with FP32 accumulate 330.4 sparse
        ("rtx-4090", 330.4e12, 82.6e12, 24, 1008e9, 450),
        # RTX Blackwell whitepaper, RTX 5090: 419 sparse with FP32 accumulate (838 with FP16)
        ("rtx-5090", 419e12, 104.8e12, 32, 1792e9, 575),
        # RTX 6000 Ada datasheet: 1,457 TFLOPS FP8 sparse = 2x the 16-bit rate, sparse
        ("rtx-6000-ada", 1457e12 / 2, 91.1e12, 48, 960e9, 300),
    ],
)
def test_consumer_and_workstation_cards_are_dense_and_binary(
    key, sparse_fp16_fp32_acc, fp32, gib, bandwidth, tdp
):
    """The whitepapers' tensor figures are sparse: the files hold half of them; "24 GB" of
    GDDR is 24 GiB (JEDEC); no scale-up link (PCIe only); a price with its source and date."""
    d = get_device(key)
    assert d.peak("fp16") == d.peak("bf16") == pytest.approx(sparse_fp16_fp32_acc / 2, rel=1e-3)
    assert d.peak("fp32") == pytest.approx(fp32)
    assert d.memory_capacity_bytes == gib * 2**30
    assert d.memory_bandwidth_bytes_per_s == pytest.approx(bandwidth)
    assert d.tdp_w == tdp
    assert d.link_bytes_per_s == 0
    assert d.price is not None and d.price.date and "skypilot-catalog" in d.price.source
