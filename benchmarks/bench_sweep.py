"""Benchmark: one sweep grid with the local executor and with a local Ray instance, side by side.

Each executor sweeps the same grid into a results folder of its own, through the real `wmplat`
command, so both compute every cell. What Ray adds is measured twice:
- its start and stop alone (`ray.init` and `ray.shutdown` with nothing to run), timed in the
  same run;
- per cell: (the Ray sweep's wall time − Ray's start and stop − the local sweep's wall time) ÷
  the cells computed.

(That both hold the same numbers, bit for bit, is tests/test_sweep.py's to check.)

    python benchmarks/bench_sweep.py [--methods pdiff,noise] [--set noise.sigma=0.05]
        [--zoos digits-mlp,digits-pdiff] [--seeds 0-2] [--samples 100] [--workers 2]

The defaults need the wmplat-pdiff plugin (`pip install ./plugins/wmplat-pdiff`) and Ray
(`pip install '.[ray]'`); expect tens of minutes on two cores.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import describe_machine

WMPLAT = shutil.which("wmplat", path=str(Path(sys.executable).parent)) or "wmplat"


def sweep(args, executor: str, results: Path) -> tuple[float, str]:
    command = [WMPLAT, "sweep", "--methods", args.methods, "--zoos", args.zoos, "--seeds",
               args.seeds, "--samples", str(args.samples), "--workers", str(args.workers),
               "--executor", executor, "--results-dir", str(results),
               *(item for s in args.set for item in ("--set", s))]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "WMPLAT_QUIET": "1"})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{executor} sweep failed:\n{proc.stderr[-3000:]}")
    summary = [line for line in proc.stderr.splitlines() if line.startswith("sweep done")]
    return wall, summary[-1]


def ray_start_stop(workers: int) -> float:
    code = ("import os, ray; os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0'); "
            f"ray.init(num_cpus={workers}, include_dashboard=False); ray.shutdown()")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="pdiff,noise")
    parser.add_argument("--set", action="append", default=None)
    parser.add_argument("--zoos", default="digits-mlp,digits-pdiff")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.set = ["noise.sigma=0.05"] if args.set is None else args.set
    print(describe_machine())
    folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    # the zoos built (and the digits data cached) before anything is timed
    warm = [WMPLAT, "zoo", "info"]
    for zoo in args.zoos.split(","):
        subprocess.run([*warm, zoo], check=True, capture_output=True)
    local_wall, local_summary = sweep(args, "local", folder / "local")
    ray_wall, ray_summary = sweep(args, "ray", folder / "ray")
    ray_alone = ray_start_stop(args.workers)
    cells = int(local_summary.split(": ")[-1].split(" computed")[0])
    print(f"grid: --methods {args.methods} --zoos {args.zoos} --seeds {args.seeds} "
          f"--samples {args.samples} --workers {args.workers} {' '.join(args.set)}")
    print(f"local: {local_wall:7.1f} s wall   {local_summary}")
    print(f"ray:   {ray_wall:7.1f} s wall   {ray_summary}")
    print(f"ray start and stop alone: {ray_alone:.1f} s")
    print(f"ray / local wall: {ray_wall / local_wall:.3f}")
    print(f"ray's overhead per cell: {(ray_wall - ray_alone - local_wall) / cells:+.2f} s "
          f"over {cells} cells")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
