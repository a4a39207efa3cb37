"""Optimizers: the fp32 state each keeps per parameter, and the cost of its update.

State values per parameter (each 4 bytes): SGD 0, SGD with momentum 1 (the velocity),
Adam/AdamW/LAMB 2 (first and second moments), Adafactor ~0 (factored second moments, no
first moment).
Update FLOPs per parameter: SGD 2 (scale, subtract); momentum 4 (+ decay and add); Adam 12
(two moment updates 3 + 4, square root 1, add epsilon 1, divide 1, scale and subtract 2);
AdamW 14 (+ weight decay); LAMB 16 (+ trust-ratio scaling); Adafactor 12 (row and column
statistics, rsqrt, scale).
"""

from __future__ import annotations

from .errors import FieldError

STATE_VALUES = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2, "lamb": 2, "adafactor": 0}
UPDATE_FLOPS = {"sgd": 2, "sgd-momentum": 4, "adam": 12, "adamw": 14, "lamb": 16, "adafactor": 12}
FP32 = 4


def check_optimizer(optimizer: str) -> str:
    if not isinstance(optimizer, str) or optimizer not in STATE_VALUES:
        raise FieldError("optimizer", optimizer, f"unknown; allowed: {', '.join(STATE_VALUES)}")
    return optimizer


def update_bytes(optimizer: str, bytes_per_element: int) -> tuple[float, float]:
    """(read, written) bytes per parameter of one update step. Below fp32 the run keeps an
    fp32 master copy (mixed precision): the update reads the gradient, the master and the
    state, and writes the master, the state and the 16/8-bit weights; in fp32 it reads the
    gradient, the weights and the state and writes the weights and the state."""
    state = STATE_VALUES[check_optimizer(optimizer)] * FP32
    nb = bytes_per_element
    mixed = nb < FP32
    read = nb + (FP32 if mixed else nb) + state
    written = nb + (FP32 if mixed else 0) + state
    return float(read), float(written)
