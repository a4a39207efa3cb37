"""roofline: hardware-aware roofline simulator for ML workloads.

    >>> from roofline import analyze, RunConfig
    >>> result = analyze("bert-large", "a100", RunConfig(batch=1, seq=512))
    >>> result.total_time_s, result.memory_bound_time_share

Nothing is read from disk at import; the device and model catalogs load on first use.
"""

from .analysis import Result, analyze
from .errors import RooflineError, SpecError, UnknownNameError
from .hardware import Device, get_device, list_devices
from .scenario import RunConfig
from .workloads import Workload, get_workload, list_workloads

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
