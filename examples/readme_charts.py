"""The README's charts, regenerated from the code: `python examples/readme_charts.py
examples/charts` rewrites the images the README shows (with no argument, into a temporary
folder)."""

import sys
import tempfile
from pathlib import Path

from roofline import RunConfig, analyze, get_workload, list_devices
from roofline.memwall import generations as run_on_every_device
from roofline.plot import generations, memory_wall, model_sizes, roofline, training_compute
from roofline.workloads import list_workloads

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
folder.mkdir(parents=True, exist_ok=True)
devices, workloads = list_devices(), list_workloads()
bert = RunConfig(batch=1, seq=512)
decode = RunConfig(batch=1, phase="decode", context=4096, dtype="fp16")
charts = {
    "roofline_bert_large.png": roofline(
        [analyze("bert-large", hw, bert) for hw in ("a100", "h100")]
    ),
    "roofline_llama2_7b_decode.png": roofline([analyze("llama-2-7b", "a100", decode)]),
    "memory_wall.png": memory_wall(devices),
    "model_sizes.png": model_sizes(workloads, devices),
    "training_compute.png": training_compute(workloads),
    "generations_bert_large.png": generations(
        run_on_every_device(get_workload("bert-large"), devices, RunConfig(batch=8, seq=512)),
        name="BERT Large (inference, batch 8, seq 512, each device's headline dtype)",
    ),
}
for name, fig in charts.items():
    fig.savefig(folder / name, dpi=100)
    print(f"wrote {folder / name}")
