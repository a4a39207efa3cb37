"""The memory wall from the device database: growth rates and a chart saved to a file."""

import sys
import tempfile
from pathlib import Path

from roofline import list_devices
from roofline.memwall import PAPER_RATES, rates
from roofline.plot import memory_wall

for name, trend in rates(list_devices()).items():
    print(f"{name:24} {trend.growth_per_2y:5.2f}x / 2 yrs   (paper {PAPER_RATES[name]}x)")

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
target = folder / "memory_wall.png"
memory_wall(list_devices()).savefig(target, dpi=120)
print(f"chart: {target}")
