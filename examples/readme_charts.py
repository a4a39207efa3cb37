"""The README's charts, regenerated from the code: `python examples/readme_charts.py
examples/charts` rewrites the images the README shows (with no argument, into a temporary
folder)."""

import sys
import tempfile
from pathlib import Path

from roofline import RunConfig, analyze, get_workload, list_devices
from roofline.hardware import get_device
from roofline.memwall import generations as run_on_every_device
from roofline.plot import (
    generations,
    memory_wall,
    model_sizes,
    roofline,
    simulation,
    training_compute,
)
from roofline.simulate import simulate
from roofline.traffic import Requests, arrivals, engine, lengths
from roofline.workloads import list_workloads

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
folder.mkdir(parents=True, exist_ok=True)
devices, workloads = list_devices(), list_workloads()
bert = RunConfig(batch=1, seq=512)
decode = RunConfig(batch=1, phase="decode", context=4096, dtype="fp16")
h100, n = get_device("h100"), 6000  # Llama-3-8B at 22 requests/s: KV-bound, the queue grows
stream = Requests(
    arrivals(n, 22.0, seed=0),
    lengths(n, 1024, kind="lognormal", spread=0.5, seed=1),
    lengths(n, 128, kind="lognormal", spread=0.5, seed=2),
)
served = simulate(
    get_workload("llama-3-8b"), RunConfig(phase="decode", attention="flash"), h100, stream,
    engine("vllm", h100),
)  # fmt: skip
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
    "simulate_llama3_8b_h100.png": simulation(
        served, "Llama 3 8B on one H100 (vLLM defaults), 22 requests/s of ~1024 in / ~128 out"
    ),
}
for name, fig in charts.items():
    fig.savefig(folder / name, dpi=100)
    print(f"wrote {folder / name}")
