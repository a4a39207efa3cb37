"""What-if rows written end to end, as a user runs them: the CLI in a fresh process, every
(scenario, device) pair to a file. Prints figures; asserts nothing but the row counts.

(a) 10^6 scenarios of BERT-Large (1000 batches x 1000 sequence lengths) on 20 devices =
    2 x 10^7 rows, to CSV and to Parquet, beside the engine alone on the same sweep
    (benchmarks/bench_whatif.py's figure: evaluate every pair and reduce to answers).
(b) 10^7 pairs (500 x 1000 scenarios x 20 devices) and 10^6 pairs to CSV: wall time and
    the peak resident memory of the process (memory flat in the grid size).

Run: python benchmarks/bench_whatif_output.py [--quick]   (--quick: 10^5 and 10^6 pairs)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roofline import list_devices

ROOFLINE = [sys.executable, "-m", "roofline"]


def devices() -> str:
    return ",".join([d.key for d in list_devices() if "fp16" in d.dtypes][:20])


def axis(n: int, top: int) -> str:
    return ",".join(str(max(1, round(top * (i + 1) / n))) for i in range(n))


def cli(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB (2^20 bytes) of one fresh `roofline` process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [*ROOFLINE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, args
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def rows_in(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1


def engine(n_batch: int, n_seq: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_whatif import sweep_for

    from roofline.answers import answers

    answers(sweep_for(10, 10))
    start = time.perf_counter()
    answers(sweep_for(n_batch, n_seq))
    return time.perf_counter() - start


def main() -> None:
    quick = "--quick" in sys.argv
    hw = devices()
    sizes = [(50, 100), (500, 100)] if quick else [(500, 100), (500, 1000), (1000, 1000)]
    with tempfile.TemporaryDirectory() as folder:
        for n_batch, n_seq in sizes:
            pairs = n_batch * n_seq * 20
            base = [
                "whatif",
                "-m",
                "bert-large",
                "--hw",
                hw,
                "--batch",
                axis(n_batch, 1000),
                "--seq",
                axis(n_seq, 512),
            ]
            eng = engine(n_batch, n_seq)
            for suffix in (".csv", ".parquet"):
                out = Path(folder) / f"w{suffix}"
                args = (
                    [*base, "-f", "csv", "-o", str(out)]
                    if suffix == ".csv"
                    else [*base, "-o", str(out)]
                )
                wall, peak = cli(args)
                got = rows_in(out)
                assert got == pairs, (got, pairs)
                size = os.path.getsize(out) / 1e6
                print(
                    f"{pairs:>12,} pairs to {suffix[1:]:7}: {wall:6.1f} s end to end "
                    f"({wall / eng:5.1f}x the engine's {eng:.2f} s), {size:8,.0f} MB "
                    f"written, peak resident {peak:5.0f} MiB"
                )
                out.unlink()


if __name__ == "__main__":
    main()
