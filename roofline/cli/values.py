"""Values of the command-level options that are not run fields: device lists, prices,
currencies, comma-separated whole numbers."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .app import fail

PriceOpt = Annotated[
    str | None,
    typer.Option(
        help="Price per device-hour: one figure for all devices, or per device "
        "(h100=2.5,a100=1.2) [default: each device file's price, where it has one]."
    ),
]
PueOpt = Annotated[
    float | None,
    typer.Option(help="Data-centre PUE, facility / IT energy [default: 1.1, sourced].", min=1),
]
NodePowerOpt = Annotated[
    float | None,
    typer.Option(
        "--node-power",
        help="A node's non-accelerator power (CPUs, memory, network), W per device "
        "[default: 0, the model cards' GPU-only boundary].",
    ),
]
GridOpt = Annotated[
    str | None,
    typer.Option(
        "--grid-intensity",
        help="Grid carbon intensity, gCO2eq/kWh, or a region: world, us, france, opt-us "
        "(location-based) [default: world, 475].",
    ),
]
PromptTokensOpt = Annotated[int, typer.Option(help="Prompt tokens a request (the mean).")]
OutputTokensOpt = Annotated[int, typer.Option(help="Output tokens a request (the mean).")]
CurrencyOpt = Annotated[
    str, typer.Option("--currency", help="Currency of --price (a three-letter code).")
]


def ints(flag: str, text: str) -> list[int]:
    """A comma-separated sweep axis of whole numbers."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(int(part))
        except ValueError:
            fail(f"{flag} {text!r}: expected whole numbers separated by commas")
    if not values:
        fail(f"{flag}: empty sweep axis; give at least one value")
    return values


def names(flag: str, text: str) -> list[str]:
    values = [p.strip() for p in text.split(",") if p.strip()]
    if not values:
        fail(f"{flag}: empty; give at least one name")
    return values


def prices(text: str) -> float | dict[str, float]:
    """--price: one figure (every device) or device=figure pairs, comma-separated."""
    allowed = "one price per device-hour (2.5) or device=price pairs (h100=2.5,a100=1.2)"

    def number(part: str) -> float:
        try:
            value = float(part)
        except ValueError:
            fail(f"--price {text!r}: expected {allowed}")
        if not 0 < value < 1e6:  # also nan and inf
            fail(f"--price {part}: a price must be > 0 and < 1e6 (per device-hour)")
        return value

    if "=" not in text:
        return number(text.strip())
    out: dict[str, float] = {}
    for part in text.split(","):
        if part.strip():
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                fail(f"--price {text!r}: expected {allowed}")
            out[name.strip().lower()] = number(value.strip())
    return out


def currency(text: str) -> str:
    code = text.strip()
    if not (len(code) == 3 and code.isalpha()):
        fail(f"--currency {text!r}: a three-letter currency code such as USD, EUR")
    return code.upper()


def devices(text: str | None) -> list[Any]:
    """Devices named in a comma-separated --hw, or all devices when --hw is left out."""
    from ..hardware import get_device, list_devices

    if text is None:
        return list_devices()
    return [get_device(n) for n in names("--hw", text)]


SIXTEEN_BIT_NOTE = (
    "each device at its best 16-bit type (bf16 where it has one, else fp16), as some lack "
    "the default fp16; --dtype fixes one for all"
)


def per_device_dtypes(devs: list[Any], dtype: str, explicit: bool) -> tuple[list[str], str | None]:
    """The datatype each device runs at: `dtype` for all, or, where --dtype was left at its
    default and a device lacks it, each device's best 16-bit type (Device.sixteen_bit: bf16
    where it has one, else fp16), with the note that says so."""
    if explicit or all(dtype in d.dtypes for d in devs):
        return [dtype] * len(devs), None
    return [d.sixteen_bit or dtype for d in devs], SIXTEEN_BIT_NOTE


def sweep_devices(text: str, dtypes: list[str], explicit: bool = True) -> list[Any]:
    """--hw of a sweep: named devices, or `all`: every device with peaks for all of `dtypes`
    (the ones without are named on stderr, so nothing is dropped silently); with --dtype left
    at its default, `all` keeps every device with a 16-bit type (per_device_dtypes)."""
    from ..hardware import get_device, list_devices

    if text.strip().lower() != "all":
        return [get_device(n) for n in names("--hw", text)]
    every = list_devices()
    if explicit:
        kept = [d for d in every if all(t in d.dtypes for t in dtypes)]
        wanted = ",".join(dtypes)
    else:
        kept = [d for d in every if d.sixteen_bit is not None]
        wanted = "a 16-bit type (fp16 or bf16)"
    skipped = [d.key for d in every if d not in kept]
    if not kept:
        fail(f"--hw all: no device has peaks for --dtype {','.join(dtypes)}")
    if skipped:
        typer.echo(
            f"--hw all: {len(kept)} devices; without {wanted}: {', '.join(skipped)}",
            err=True,
        )
    return kept
