#!/usr/bin/env python3
"""Throughput of one large message over STARTTLS against plaintext.

Starts a private Postern instance with tlsproxy and test certificates
(tests/e2e/harness.py, Instance(tls=True)), then sends a message of
--size MB --runs times over plain SMTP and --runs times over STARTTLS
(TLS 1.3, Python smtplib trusting the test root CA), alternating. Each
run times the transaction from MAIL to the 250 reply after the data,
which includes smtpd writing and fsyncing the queue file. Prints the
median rate of each mode in MB/s (1 MB = 10^6 bytes) and the CPU time
that tlsproxy spent per MB over the TLS runs.

The client is Python on the same machine, so the rates include its
cost too; both modes pay it alike.

Usage: bench/tls_throughput.py [--size 10] [--runs 5]
"""

import argparse
import os
import smtplib
import socket
import ssl
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import Instance  # noqa: E402

HOST = "mail.example.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LoopbackSMTP(smtplib.SMTP):
    """Connects to 127.0.0.1 but verifies the certificate for HOST."""

    def _get_socket(self, host, port, timeout):
        return socket.create_connection(("127.0.0.1", port), timeout)


def make_message(size_bytes):
    """A text message of about size_bytes with 76-character lines."""
    header = b"From: <bench@example.org>\r\nTo: <alice@example.test>\r\n" \
             b"Subject: throughput\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    return header + line * (max(size_bytes - len(header), 0) // len(line))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def send_once(port, ctx, msg):
    """Send msg once; return the seconds from MAIL to the final 250."""
    with LoopbackSMTP(HOST, port, timeout=120) as s:
        if ctx is not None:
            s.starttls(context=ctx)
        s.ehlo("bench.test")
        start = time.perf_counter()
        s.sendmail("bench@example.org", ["alice@example.test"], msg)
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=10,
                        help="message size in MB (10^6 bytes), default 10")
    parser.add_argument("--runs", type=int, default=5,
                        help="messages per mode, default 5")
    args = parser.parse_args()

    msg = make_message(int(args.size * 1e6))
    inst = Instance(tls=True, main_cf={"message_size_limit": "0"})
    inst.start()
    try:
        ctx = ssl.create_default_context(cafile=inst.tls_ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        tlsproxy_pid = inst.service_pids()["tlsproxy"][0]
        plain, tls = [], []
        tls_cpu = 0.0
        for _ in range(args.runs):
            plain.append(send_once(inst.smtp_port, None, msg))
            before = cpu_seconds(tlsproxy_pid)
            tls.append(send_once(inst.smtp_port, ctx, msg))
            tls_cpu += cpu_seconds(tlsproxy_pid) - before
        inst.wait_for_messages("alice", 2 * args.runs, timeout=120)
    finally:
        inst.stop()

    mb = len(msg) / 1e6
    plain_rate = mb / statistics.median(plain)
    tls_rate = mb / statistics.median(tls)
    print("message: %.1f MB, %d runs per mode" % (mb, args.runs))
    print("plaintext: %.0f MB/s (median %.3f s)" % (plain_rate, statistics.median(plain)))
    print("STARTTLS:  %.0f MB/s (median %.3f s)" % (tls_rate, statistics.median(tls)))
    print("tlsproxy CPU: %.2f ms per MB" % (tls_cpu * 1000 / (mb * args.runs)))


if __name__ == "__main__":
    main()
