"""BERT-Large on an A100 from Python: the per-layer table as a DataFrame and the summary."""

from roofline import RunConfig, analyze
from roofline.report.run import layer_frame

result = analyze("bert-large", "a100", RunConfig(batch=8, seq=512, dtype="fp16"))
frame = layer_frame(result)
columns = ["kind", "count", "flops_FLOP", "intensity_FLOP_per_B", "time_s", "bound"]
print(frame[columns].to_string(float_format=lambda x: f"{x:.4g}"))
print(
    f"step time {result.total_time_s * 1e3:.2f} ms, "
    f"{100 * result.memory_bound_time_share:.0f}% of it memory-bound, "
    f"ridge point {result.ridge_point:.0f} FLOP/B"
)
