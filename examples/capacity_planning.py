"""Capacity planning from Python: Llama-2-70B serving and GPT-3 training.

How much memory does decoding need, which layouts fit an H100, and how does the step time
of a sweep of batches and contexts compare across devices?"""

from roofline import RunConfig, get_device, get_workload
from roofline.answers import answers
from roofline.memory import memory_breakdown
from roofline.parallel import communication, min_layout
from roofline.scenario import Layout
from roofline.whatif import build_sweep, run_sweep

llama = get_workload("llama-2-70b")
serve = RunConfig(batch=16, dtype="fp16", phase="decode", context=4096)
m = memory_breakdown(llama, serve)
print(
    f"Llama-2-70B decode, batch 16 x 4096 context: weights {m.params / 1e9:.0f} GB, "
    f"KV cache {m.kv_cache / 1e9:.1f} GB"
)
h100 = get_device("h100")
print("smallest layout on H100:", min_layout(llama, serve, h100))

gpt3 = get_workload("gpt-3")
layout = Layout(data=8, tensor=8, pipeline=4, zero=1)
train = RunConfig(
    batch=64, seq=2048, dtype="bf16", phase="training", recompute="full", layout=layout
)
per_device = memory_breakdown(gpt3, train)
comm = communication(gpt3, train)
print(
    f"GPT-3 on {layout.devices} GPUs (dp 8 x tp 8 x pp 4, ZeRO-1, recompute): "
    f"{per_device.total / 1e9:.1f} GB a device, {comm.time_s(h100) * 1e3:.0f} ms of "
    "communication a step on H100 NVLink"
)

sweep = build_sweep(
    llama,
    [get_device("a100"), h100],
    RunConfig(phase="decode"),
    batches=[1, 8, 64],
    seqs=[None],
    contexts=[512, 4096],
    dtypes=["fp16"],
    replicas=[1],
)
out = run_sweep(sweep)
print(f"decode step on H100, batch 64, context 4096: {out.time_s[-1, 1] * 1e3:.1f} ms")
for a in answers(sweep):
    print(
        f"{a.device}: largest batch that fits at 4096 tokens: {a.max_batch}, "
        f"compute-bound from batch: {a.compute_bound_batch}"
    )
