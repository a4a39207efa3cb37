"""roofline: hardware-aware roofline simulator for ML workloads.

    >>> from roofline import analyze, RunConfig
    >>> result = analyze("bert-large", "a100", RunConfig(batch=1, seq=512))
    >>> result.total_time_s, result.memory_bound_time_share

Nothing is read from disk at import; the device and model catalogs load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import Result, analyze
    from .errors import RooflineError, SpecError, UnknownNameError
    from .hardware import Device, get_device, list_devices
    from .scenario import RunConfig
    from .workloads import Workload, get_workload, list_workloads

# each public name and its module, imported when first asked for (PEP 562): `import
# roofline.cli` (and so the command line's start-up) does not load numpy and the engine
_HOMES = {
    "Result": ".analysis",
    "analyze": ".analysis",
    "RooflineError": ".errors",
    "SpecError": ".errors",
    "UnknownNameError": ".errors",
    "Device": ".hardware",
    "get_device": ".hardware",
    "list_devices": ".hardware",
    "RunConfig": ".scenario",
    "Workload": ".workloads",
    "get_workload": ".workloads",
    "list_workloads": ".workloads",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module 'roofline' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Device",
    "Result",
    "RooflineError",
    "RunConfig",
    "SpecError",
    "UnknownNameError",
    "Workload",
    "__version__",
    "analyze",
    "get_device",
    "get_workload",
    "list_devices",
    "list_workloads",
]
