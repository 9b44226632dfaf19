#!/usr/bin/env python3
"""Plan benchmark: times `mab plan` on generated monorepos and reports peak memory.

usage: python3 bench/plan.py [--runs N] [--split] [SIZES...]   (default sizes: 250 1000 2000 5000)

Each size is a config of that many images x 4 platforms x 3 tag templates, in dependency chains
of 10 (see genconfig.py). Each size runs N times (default 15) after one warm-up; the median
wall time and the largest peak RSS are printed as a Markdown table for the README.
With --split, each image is in a multiarch.toml of its own under a root of defaults, so the
time includes discovering and reading that many files.

Then the 1,000-image config again with an unread `depends_on` per image (genconfig.py
--unread-depends-on: ~1,000 warnings), and how much slower it plans than the plain one (the
target: at most 20%). Warnings go to stderr, which is discarded like stdout.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import genconfig  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAB = os.path.join(ROOT, "target", "release", "mab")


def run(args):
    """Wall time and peak RSS (KiB) of one run of `args`."""
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{args} failed with {child.returncode}")
    return elapsed, usage.ru_maxrss


def main():
    args = sys.argv[1:]
    runs = 15
    if args[:1] == ["--runs"]:
        runs, args = int(args[1]), args[2:]
    split = "--split" in args
    args = [a for a in args if a != "--split"]
    sizes = [int(a) for a in args] or [250, 1000, 2000, 5000]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    print(f"| images | builds | median `mab plan` (json) | per image | peak RSS |")
    print(f"|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for n in sizes:
            d = os.path.join(work, str(n))
            genconfig.write(d, n, split=split)
            cmd = [MAB, "plan", "-f", os.path.join(d, "multiarch.toml"), "--format", "json"]
            run(cmd)
            times = []
            peak = 0
            for _ in range(runs):
                t, rss = run(cmd)
                times.append(t)
                peak = max(peak, rss)
            med = statistics.median(times)
            print(f"| {n} | {n * 4} | {med * 1000:.0f} ms | {med * 1e6 / n:.0f} µs | {peak / 1024:.0f} MiB |")
        print()
        print("| 1,000 images | median `mab plan` (json) |")
        print("|---|---:|")
        medians = []
        for unread in (False, True):
            d = os.path.join(work, f"warnings-{unread}")
            genconfig.write(d, 1000, split=split, unread=unread)
            cmd = [MAB, "plan", "-f", os.path.join(d, "multiarch.toml"), "--format", "json"]
            run(cmd)
            medians.append(statistics.median(run(cmd)[0] for _ in range(runs)))
        print(f"| no warnings | {medians[0] * 1000:.0f} ms |")
        print(f"| ~1,000 unread depends_on warnings | {medians[1] * 1000:.0f} ms ({medians[1] / medians[0] - 1:+.0%}) |")


if __name__ == "__main__":
    main()
