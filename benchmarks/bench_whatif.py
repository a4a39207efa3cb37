"""What-if sweep speed and memory. Prints figures; asserts nothing.

(a) 10^6 scenarios of BERT-Large (batch 1..1000 x seq 1..1000 in steps) on 20 devices, end
    to end: build the sweep (fit the cost polynomials), evaluate all 2e7 (scenario, device)
    pairs in the numba kernel, reduce to the answers (fastest fitting scenario per device,
    compute-bound batch, largest batch that fits). Target < 2 s on a 2-core machine.
(b) peak Python-heap memory (tracemalloc) of the same reduction for 10^5 and 10^6
    scenarios: with summaries only it should not grow with the grid.

Run: python benchmarks/bench_whatif.py
"""

from __future__ import annotations

import time
import tracemalloc

from roofline import get_workload, list_devices
from roofline.answers import answers
from roofline.whatif import build_sweep


def sweep_for(n_batch: int, n_seq: int):
    w = get_workload("bert-large")
    devices = [d for d in list_devices() if "fp16" in d.dtypes][:20]
    batches = list(range(1, n_batch + 1))
    seqs = [max(1, round(512 * (i + 1) / n_seq)) for i in range(n_seq)]
    return build_sweep(
        w, devices, batches=batches, seqs=seqs, contexts=[None], dtypes=["fp16"], replicas=[1]
    )


def main() -> None:
    answers(sweep_for(10, 10))  # compile or load the kernel from cache
    for _ in range(2):
        start = time.perf_counter()
        sweep = sweep_for(1000, 1000)
        found = answers(sweep)
        wall = time.perf_counter() - start
        pairs = sweep.grid.scenarios * len(sweep.devices)
        print(
            f"(a) {sweep.grid.scenarios:,} scenarios x {len(sweep.devices)} devices = "
            f"{pairs:,} pairs, "
            f"end to end {wall:.2f} s ({pairs / wall / 1e6:.0f} M pairs/s); target < 2 s"
        )
    print(f"    e.g. {found[0].device}: fastest fitting {found[0].best}")
    for n in (316, 1000):
        tracemalloc.start()
        answers(sweep_for(n, n))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"(b) {n * n:>9,} scenarios: peak Python-heap memory {peak / 1e6:6.1f} MB")


if __name__ == "__main__":
    main()
