"""One engine call for many layers on many devices: how BERT-Large's time per sample falls
with batch on every device that has an fp16 or bf16 peak."""

import numpy as np

from roofline import RunConfig, get_workload, list_devices
from roofline.kernels import evaluate

bert = get_workload("bert-large")
devices = [d for d in list_devices() if {"fp16", "bf16"} & set(d.dtypes)]
peak = [d.peak_flops_per_s.get("fp16", d.peak_flops_per_s.get("bf16")) for d in devices]
bandwidth = [d.memory_bandwidth_bytes_per_s for d in devices]

print(f"{'device':16}" + "".join(f"{'batch ' + str(b):>12}" for b in (1, 8, 64)))
per_sample = {}
for batch in (1, 8, 64):
    table = bert.layers(RunConfig(batch=batch, seq=128))
    out = evaluate(table.total_flops, table.total_bytes, peak, bandwidth)
    per_sample[batch] = out.time_s.sum(axis=0) / batch  # seconds per sample, per device
for j, d in enumerate(devices):
    print(f"{d.key:16}" + "".join(f"{per_sample[b][j] * 1e6:10.1f}µs" for b in (1, 8, 64)))
assert np.all(per_sample[64] <= per_sample[1])  # batching never costs more per sample here
