#!/usr/bin/env python3
"""Two mab binaries timed in turn on the same generated config: the fair wall-time comparison on
a machine whose load changes from minute to minute.

usage: python3 bench/inturn.py BASE NEW [--rounds N] [--unread] [--split] [IMAGES]

Each round runs BASE then NEW once (`mab plan --format json`, output discarded), after one
warm-up each; prints the median wall time, user and system CPU, and the largest peak RSS of
each. Default: 21 rounds, 1,000 images (genconfig.py).
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import genconfig  # noqa: E402


def run(args):
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{args} failed")
    return elapsed, usage.ru_utime, usage.ru_stime, usage.ru_maxrss


def main():
    args = sys.argv[1:]
    rounds = 21
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i : i + 2]
    unread = "--unread" in args
    split = "--split" in args
    args = [a for a in args if a not in ("--unread", "--split")]
    binaries = args[:2]
    images = int(args[2]) if len(args) > 2 else 1000
    with tempfile.TemporaryDirectory() as work:
        genconfig.write(work, images, split=split, unread=unread)
        config = os.path.join(work, "multiarch.toml")
        cmds = [[b, "plan", "-f", config, "--format", "json"] for b in binaries]
        for cmd in cmds:
            run(cmd)
        results = [[] for _ in cmds]
        for _ in range(rounds):
            for cmd, res in zip(cmds, results):
                res.append(run(cmd))
    print("| binary | median wall | median user | median sys | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for b, res in zip(binaries, results):
        wall, user, sys_, rss = zip(*res)
        print(
            f"| {b} | {statistics.median(wall) * 1000:.1f} ms | {statistics.median(user) * 1000:.0f} ms"
            f" | {statistics.median(sys_) * 1000:.0f} ms | {max(rss) / 1024:.1f} MiB |"
        )


if __name__ == "__main__":
    main()
