#!/usr/bin/env python3
"""Relay benchmark: smtp-source -> Postern -> smtp-sink, all on loopback.

Starts a private Postern instance (tests/e2e/harness.py) that relays all
mail to smtp-sink, drives it with smtp-source, and prints:
  - messages per second accepted (smtp-source's wall time),
  - messages per second delivered end to end (until the sink saw them all),
  - CPU time per message of all Postern processes (utime + stime from /proc,
    including children that exited, through master's cutime/cstime),
  - PSS per idle SMTP session, from smtpd's /proc/PID/smaps_rollup with
    200 idle sessions open.
smtp-source and smtp-sink come with Debian's postfix package.

Usage: bench/relay.py [--sessions 10] [--messages 2000] [--size 4096]
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import Instance, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, include_children):
    """utime + stime of pid (plus reaped children's when asked), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if include_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def instance_cpu(inst):
    total = cpu_seconds(inst.master_pid, True)
    for pids in inst.service_pids().values():
        for pid in pids:
            try:
                total += cpu_seconds(pid, False)
            except OSError:
                pass
    return total


def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        match = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
    return int(match.group(1))


def count_sent(inst):
    # qmgr logs one line per delivered recipient; the smtp agent logs another.
    return len(re.findall(r"postern/qmgr\[\d+\]: .*status=sent", inst.log_text()))


def measure_idle_sessions(inst, count):
    smtpd = inst.service_pids()["smtpd"]
    before = sum(pss_kib(p) for p in smtpd)
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", inst.smtp_port))
        s.recv(512)
        socks.append(s)
    time.sleep(1)
    after = sum(pss_kib(p) for p in smtpd)
    for s in socks:
        s.close()
    return (after - before) / count, before, after


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--idle", type=int, default=200)
    args = parser.parse_args()

    for tool in ("smtp-source", "smtp-sink"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench: %s not found; install Debian's postfix package" % tool)

    sink_port = free_port()
    sink_cmd = ["/usr/sbin/smtp-sink"]
    if os.geteuid() == 0:
        sink_cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root
    sink = subprocess.Popen(sink_cmd + ["127.0.0.1:%d" % sink_port, "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    if sink.poll() is not None:
        sys.exit("bench: smtp-sink failed: %s" % sink.stderr.read().decode())
    inst = Instance(main_cf={
        "mynetworks": "127.0.0.0/8",
        "relayhost": "[127.0.0.1]:%d" % sink_port,
        "default_destination_concurrency_limit": "20",
    })
    try:
        inst.start()
        cpu_before = instance_cpu(inst)
        start = time.monotonic()
        subprocess.run(["/usr/sbin/smtp-source", "-s", str(args.sessions),
                        "-m", str(args.messages), "-l", str(args.size),
                        "-f", "bench@example.org", "-t", "sink@relay.example",
                        "127.0.0.1:%d" % inst.smtp_port], check=True)
        accepted = time.monotonic() - start
        while count_sent(inst) < args.messages:
            if time.monotonic() - start > 600:
                sys.exit("bench: only %d of %d delivered after 600 s"
                         % (count_sent(inst), args.messages))
            time.sleep(0.05)
        delivered = time.monotonic() - start
        cpu = instance_cpu(inst) - cpu_before
        per_session, before, after = measure_idle_sessions(inst, args.idle)

        print("messages: %d of %d bytes, %d parallel sessions"
              % (args.messages, args.size, args.sessions))
        print("accepted: %.0f msg/s (%.2f s)" % (args.messages / accepted, accepted))
        print("delivered end to end: %.0f msg/s (%.2f s)" % (args.messages / delivered, delivered))
        print("CPU of Postern processes: %.3f s total, %.3f ms per message"
              % (cpu, cpu * 1000 / args.messages))
        print("idle sessions: %d, smtpd PSS %d KiB -> %d KiB, %.1f KiB per session"
              % (args.idle, before, after, per_session))
    finally:
        inst.stop()
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
