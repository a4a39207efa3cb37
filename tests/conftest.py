from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Kernel compilation on the first example must not trip hypothesis' per-example deadline.
settings.register_profile("roofline", deadline=None, max_examples=150)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "roofline"))

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def repo() -> Path:
    return REPO
