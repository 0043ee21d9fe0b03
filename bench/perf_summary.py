#!/usr/bin/env python3
"""Summarize a `perf record -g` profile (from relay.py --perf-record) by cost.

Reads `perf script` output and prints shares of all samples:
  - by process name (comm),
  - by process name and system call (the __x64_sys_* frame of kernel
    samples, "kernel, no syscall" for interrupts and scheduling, "user" for
    samples in user space),
  - the user-space functions with the most samples of their own.

Usage: bench/perf_summary.py PERF_DATA [--top 15]
"""

import argparse
import collections
import re
import subprocess
import sys

# A frame line of `perf script`: address, symbol+offset, (object).
FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(\S+?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$")
SYSCALL = re.compile(r"^__(?:x64|ia32)_sys_(\w+)$")


def read_samples(path):
    """Yield (comm, [(symbol, object), ...] innermost frame first) per sample."""
    text = subprocess.run(["perf", "script", "-i", path], capture_output=True,
                          text=True, check=True).stdout
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        comm = lines[0].split()[0]
        frames = []
        for line in lines[1:]:
            match = FRAME.match(line)
            if match:
                frames.append((match.group(2), match.group(3)))
        yield comm, frames


def classify(frames):
    """Return (syscall or category, innermost user-space symbol or None)."""
    in_kernel = bool(frames) and frames[0][1] == "[kernel.kallsyms]"
    category = "user"
    if in_kernel:
        category = "kernel, no syscall"
        for symbol, _ in frames:
            match = SYSCALL.match(symbol)
            if match:
                category = match.group(1)
                break
    user_symbol = None
    if not in_kernel and frames:
        symbol, obj = frames[0]
        user_symbol = "%s (%s)" % (symbol, obj.rsplit("/", 1)[-1])
    return category, user_symbol


def print_shares(title, counter, total, top):
    print(title)
    for key, count in counter.most_common(top):
        print("  %5.1f%%  %s" % (100.0 * count / total, key))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="perf.data file")
    parser.add_argument("--top", type=int, default=15, help="rows per table (default 15)")
    args = parser.parse_args()

    by_comm = collections.Counter()
    by_syscall = collections.Counter()
    by_user_symbol = collections.Counter()
    total = 0
    for comm, frames in read_samples(args.data):
        total += 1
        category, user_symbol = classify(frames)
        by_comm[comm] += 1
        by_syscall["%s: %s" % (comm, category)] += 1
        if user_symbol:
            by_user_symbol["%s: %s" % (comm, user_symbol)] += 1
    if total == 0:
        sys.exit("perf_summary: no samples in %s" % args.data)

    print("%d samples\n" % total)
    print_shares("by process", by_comm, total, args.top)
    print_shares("by process and system call", by_syscall, total, args.top)
    print_shares("user-space functions (self)", by_user_symbol, total, args.top)


if __name__ == "__main__":
    main()
