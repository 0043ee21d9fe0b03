#!/usr/bin/env python3
"""Relay benchmark: smtp-source -> MTA -> smtp-sink, all on loopback.

Starts a private Postern instance (tests/e2e/harness.py), or with --compare
also a private Postfix instance (bench/postfix_instance.py), that relays all
mail to smtp-sink, drives it with smtp-source, and prints for each:
  - messages per second accepted (smtp-source's wall time),
  - messages per second delivered end to end (until the MTA's log shows
    status=sent for every message),
  - CPU time per message of all the MTA's processes (utime + stime from
    /proc, including children that exited, through master's cutime/cstime),
  - context switches per message (voluntary + involuntary, from `perf stat
    -e context-switches` attached to master and its children, which also
    counts children that exit; omitted when perf does not work),
  - PSS per idle SMTP session: the total PSS of all the MTA's processes
    (/proc/PID/smaps_rollup) before and after opening idle sessions, divided
    by their number, repeated when a process exited in between. Postfix runs one smtpd process per session, so its
    default_process_limit is raised to 300 (postconf + postfix reload) for
    this step only.
smtp-source, smtp-sink and Postfix come with Debian's postfix package.

Usage: bench/relay.py [--sessions 10] [--messages 2000] [--size 4096]
                      [--compare [--repeat 3]] [--perf-record PREFIX]
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(BENCH_DIR, "..", "tests", "e2e"))
from harness import Instance  # noqa: E402
from postfix_instance import PostfixInstance, postfix_available  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
# Ports for Postfix and smtp-sink. Postern's instance picks its own.
PORT_RANGE = range(53000, 54000)
DELIVERY_TIMEOUT = 600


class PosternTarget:
    """Postern relaying everything to the sink, with the harness's defaults."""

    name = "postern"
    # qmgr logs one line per delivered recipient; the smtp agent logs another.
    sent_pattern = re.compile(rb"postern/qmgr\[\d+\]: .*status=sent")

    def __init__(self, sink_port):
        self.inst = Instance(main_cf={
            "mynetworks": "127.0.0.0/8",
            "relayhost": "[127.0.0.1]:%d" % sink_port,
            "default_destination_concurrency_limit": "20",
        })
        self.log_file = self.inst.log_file

    def start(self):
        self.inst.start()
        self.smtp_port = self.inst.smtp_port
        self.master_pid = self.inst.master_pid

    def service_pids(self):
        return self.inst.service_pids()

    def prepare_idle(self):
        pass

    def stop(self):
        self.inst.stop()


class PostfixTarget(PostfixInstance):
    """Postfix 3.7 with the same relay settings as PosternTarget."""

    # The smtp (or relay) client logs one line per delivered recipient.
    sent_pattern = re.compile(rb"/(?:smtp|relay)\[\d+\]: .*status=sent")

    def __init__(self, sink_port):
        super().__init__(free_port_in_range(), sink_port)

    def prepare_idle(self):
        # Postfix runs one smtpd per session and its default limit is 100.
        self.set_parameter("default_process_limit", "300")
        time.sleep(1)


def free_port_in_range():
    """Return a port of PORT_RANGE that nothing on 127.0.0.1 listens on."""
    for port in PORT_RANGE:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in %d-%d on 127.0.0.1; stop what listens there"
                       % (PORT_RANGE[0], PORT_RANGE[-1]))


def read_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, include_children):
    """Return utime + stime of pid (plus reaped children's when asked), in seconds."""
    fields = read_stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if include_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def cpu_by_process(target):
    """Return name -> CPU seconds of master, its reaped children and live children."""
    own = cpu_seconds(target.master_pid, False)
    split = {"master": own,
             "exited children": cpu_seconds(target.master_pid, True) - own}
    for name, pids in target.service_pids().items():
        for pid in pids:
            try:
                split[name] = split.get(name, 0.0) + cpu_seconds(pid, False)
            except OSError:
                pass
    return split


def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        match = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
    return int(match.group(1))


def pss_by_pid(target):
    """Return pid -> PSS KiB of master and its children."""
    result = {}
    for pid in [target.master_pid] + all_children(target):
        try:
            result[pid] = pss_kib(pid)
        except OSError:
            pass
    return result


def all_children(target):
    return [pid for pids in target.service_pids().values() for pid in pids]


class SentCounter:
    """Counter of log lines matching a pattern that reads only appended data."""

    def __init__(self, path, pattern):
        self.path = path
        self.pattern = pattern
        self.offset = 0
        self.partial = b""
        self.count = 0

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self.count
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        self.count += sum(1 for line in lines if self.pattern.search(line))
        return self.count


def perf_works():
    if shutil.which("perf") is None:
        return False
    result = subprocess.run(["perf", "stat", "-x,", "-e", "context-switches", "true"],
                            capture_output=True, text=True)
    return result.returncode == 0 and "not supported" not in result.stderr


class ContextSwitchCounter:
    """`perf stat -e context-switches` on master and its children.

    perf's per-task counters are inherited by tasks forked after it attaches,
    and the counts of exited tasks are added to their parent's, so processes
    that master starts and reaps during the run are included.
    """

    def __init__(self, target):
        pids = [target.master_pid] + all_children(target)
        self.out = tempfile.NamedTemporaryFile(prefix="relay-perf-", suffix=".csv")
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "context-switches", "-o", self.out.name,
             "-p", ",".join(str(p) for p in pids)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # let perf attach before the load starts

    def stop(self):
        """Stop perf and return the context switch count (None if unreadable)."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        with open(self.out.name) as f:
            text = f.read()
        self.out.close()
        for line in text.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2] == "context-switches":
                try:
                    return int(fields[0])
                except ValueError:
                    return None
        return None


class Profiler:
    """`perf record -e cpu-clock -g` on master and its children, into path."""

    def __init__(self, target, path):
        pids = [target.master_pid] + all_children(target)
        self.proc = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-g", "-o", path,
             "-p", ",".join(str(p) for p in pids)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)


def measure_idle_sessions(target, count, attempts=3):
    """Return total PSS KiB before and after opening count idle sessions.

    A process that exits between the two readings (a delivery agent that
    reached its idle time) would make the difference wrong, so such a
    reading is repeated, up to attempts times.
    """
    target.prepare_idle()
    time.sleep(1)  # let the processes release what the load left behind
    for attempt in range(attempts):
        before = pss_by_pid(target)
        after = open_idle_sessions(target, count)
        if set(before) <= set(after):
            break
        print("bench: %s: a process exited while measuring idle sessions, retrying"
              % target.name)
        time.sleep(1)
    return sum(before.values()), sum(after.values())


def open_idle_sessions(target, count):
    """Open count sessions, wait for each banner, and return pss_by_pid()."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", target.smtp_port), timeout=20)
            banner = sock.recv(512)
            socks.append(sock)
            if not banner.startswith(b"220"):
                raise RuntimeError("session %d: expected a 220 banner, got %r"
                                   % (len(socks), banner[:80]))
        time.sleep(1)
        return pss_by_pid(target)
    finally:
        for sock in socks:
            sock.close()


def run_load(target, args, use_perf):
    """Drive target with smtp-source; return the figures of one run."""
    counter = SentCounter(target.log_file, target.sent_pattern)
    initial_sent = counter.update()
    cpu_before = cpu_by_process(target)
    switches = ContextSwitchCounter(target) if use_perf else None
    profiler = None
    if args.perf_record:
        profiler = Profiler(target, "%s-%s.data" % (args.perf_record, target.name))
    start = time.monotonic()
    subprocess.run([SMTP_SOURCE, "-s", str(args.sessions), "-m", str(args.messages),
                    "-l", str(args.size), "-f", "bench@example.org",
                    "-t", "sink@relay.example", "127.0.0.1:%d" % target.smtp_port],
                   check=True)
    accepted = time.monotonic() - start
    while counter.update() - initial_sent < args.messages:
        if time.monotonic() - start > DELIVERY_TIMEOUT:
            raise RuntimeError("%s: only %d of %d delivered after %d s"
                               % (target.name, counter.count - initial_sent,
                                  args.messages, DELIVERY_TIMEOUT))
        time.sleep(0.02)
    delivered = time.monotonic() - start
    cpu_after = cpu_by_process(target)
    ctx = switches.stop() if switches else None
    if profiler:
        profiler.stop()

    split = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0)
             for name in set(cpu_before) | set(cpu_after)}
    cpu = sum(split.values())
    before, after = measure_idle_sessions(target, args.idle)
    return {
        "accepted": args.messages / accepted,
        "delivered": args.messages / delivered,
        "cpu_ms": cpu * 1000 / args.messages,
        "ctx": ctx / args.messages if ctx is not None else None,
        "pss_session": (after - before) / args.idle,
        "pss_before": before,
        "pss_after": after,
        "split": split,
    }


def run_target(kind, sink_port, args, use_perf):
    target = kind(sink_port)
    try:
        target.start()
        return run_load(target, args, use_perf)
    finally:
        target.stop()


def print_run(name, result, args):
    print("%s: accepted %.0f msg/s, delivered %.0f msg/s, %.3f ms CPU/msg, %s"
          "PSS %d -> %d KiB with %d idle sessions (%.1f KiB each)"
          % (name, result["accepted"], result["delivered"], result["cpu_ms"],
             "" if result["ctx"] is None else "%.1f context switches/msg, " % result["ctx"],
             result["pss_before"], result["pss_after"], args.idle,
             result["pss_session"]))
    split = ", ".join("%s %.2f s" % (k, v) for k, v in
                      sorted(result["split"].items(), key=lambda kv: -kv[1]) if v > 0)
    print("  CPU by process: %s" % split)


ROWS = [
    ("accepted, msg/s", "accepted", "%.0f"),
    ("delivered end to end, msg/s", "delivered", "%.0f"),
    ("CPU per message, ms", "cpu_ms", "%.3f"),
    ("context switches per message", "ctx", "%.1f"),
    ("PSS per idle session, KiB", "pss_session", "%.1f"),
]


def print_table(results, repeat):
    names = list(results)
    print()
    print("median of %d runs" % repeat)
    print("| %-30s | %s |" % ("figure", " | ".join("%10s" % n for n in names)))
    print("|%s|%s|" % ("-" * 32, "|".join("-" * 12 for _ in names)))
    for label, key, fmt in ROWS:
        cells = []
        for name in names:
            values = [r[key] for r in results[name] if r[key] is not None]
            cells.append("%10s" % (fmt % statistics.median(values) if values else "n/a"))
        print("| %-30s | %s |" % (label, " | ".join(cells)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-s", "--sessions", type=int, default=10,
                        help="parallel smtp-source sessions (default 10)")
    parser.add_argument("-m", "--messages", type=int, default=2000,
                        help="messages to send (default 2000)")
    parser.add_argument("-l", "--size", type=int, default=4096,
                        help="message size in bytes (default 4096)")
    parser.add_argument("--idle", type=int, default=200,
                        help="idle sessions opened for the PSS figure (default 200)")
    parser.add_argument("--compare", action="store_true",
                        help="run Postern and then Postfix with the same load")
    parser.add_argument("--repeat", type=int, default=None,
                        help="repetitions, median reported (default 3 with --compare, else 1)")
    parser.add_argument("--no-perf", action="store_true",
                        help="do not attach perf stat for context switches")
    parser.add_argument("--perf-record", metavar="PREFIX",
                        help="record a CPU profile of each MTA during the load into "
                        "PREFIX-postern.data (and PREFIX-postfix.data) with perf record")
    return parser.parse_args()


def main():
    args = parse_args()
    repeat = args.repeat or (3 if args.compare else 1)
    for tool in (SMTP_SOURCE, SMTP_SINK):
        if not os.access(tool, os.X_OK):
            sys.exit("bench: %s not found; install Debian's postfix package" % tool)

    kinds = [PosternTarget]
    if args.compare:
        reason = postfix_available()
        if reason:
            print("bench: skipping Postfix: %s" % reason)
        else:
            kinds.append(PostfixTarget)
    use_perf = not args.no_perf and perf_works()
    if not use_perf:
        print("bench: perf stat does not work here; no context switch figures")

    sink_port = free_port_in_range()
    sink_cmd = [SMTP_SINK]
    if os.geteuid() == 0:
        sink_cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root
    sink = subprocess.Popen(sink_cmd + ["127.0.0.1:%d" % sink_port, "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    if sink.poll() is not None:
        sys.exit("bench: smtp-sink failed: %s" % sink.stderr.read().decode())

    print("messages: %d of %d bytes, %d parallel sessions, %d run(s)"
          % (args.messages, args.size, args.sessions, repeat))
    results = {kind.name: [] for kind in kinds}
    try:
        for run in range(repeat):
            for kind in kinds:
                result = run_target(kind, sink_port, args, use_perf)
                results[kind.name].append(result)
                print_run("run %d %s" % (run + 1, kind.name), result, args)
    finally:
        sink.terminate()
        sink.wait()
    print_table(results, repeat)


if __name__ == "__main__":
    main()
