import pytest

from roofline.units import parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "si"),
    [
        ("2039 GB/s", "bandwidth", 2039e9),
        ("3.35 TB/s", "bandwidth", 3.35e12),
        ("800 GiB/s", "bandwidth", 800 * 2**30),
        ("312 TFLOP/s", "rate", 312e12),
        ("624 TOP/s", "rate", 624e12),
        ("0.198 TFLOP/s", "rate", 0.198e12),
        ("80 GB", "size", 80e9),
        ("32 GiB", "size", 32 * 2**30),
        ("128 MiB", "size", 128 * 2**20),
        ("40 MB", "size", 40e6),
        ("400 W", "power", 400.0),
        ("1e3 GB/s", "bandwidth", 1e12),
    ],
)
def test_parse_quantity_converts_to_si(text, kind, si):
    assert parse_quantity(text, kind) == pytest.approx(si, rel=1e-15)


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("-1 GB/s", "bandwidth", "must be > 0"),
        ("0 GB/s", "bandwidth", "must be > 0"),
        ("2039", "bandwidth", "expected a number with a unit"),
        (2039, "bandwidth", "expected a number with a unit"),
        ("2039 GB", "bandwidth", "unknown unit 'GB'"),
        ("312 TFLOPS", "rate", "unknown unit 'TFLOPS'"),
        ("fast", "rate", "expected a number with a unit"),
        (True, "size", "expected a number with a unit"),
    ],
)
def test_parse_quantity_rejects_with_the_fix(value, kind, message):
    with pytest.raises(ValueError, match=message):
        parse_quantity(value, kind)
