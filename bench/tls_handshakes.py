#!/usr/bin/env python3
"""TLS handshake benchmark of tlsproxy, driven without smtpd.

Starts a private Postern instance with tlsproxy and test certificates
(scripts/make-test-certs.sh), then for --seconds each: client processes
open TCP connections to a listener of this script and run TLS 1.3
handshakes (Python ssl, trusting the test root CA); the script passes
each accepted socket to private/tlsproxy exactly as smtpd will, and
waits for the reply. Prints full and resumed (session ticket)
handshakes per second and tlsproxy's CPU time per handshake.

The clients and the caller are Python on the same machine, so the rates
are lower bounds of what tlsproxy itself can do; the CPU time per
handshake is tlsproxy's alone.

Usage: bench/tls_handshakes.py [--seconds 5] [--clients 2]
"""

import argparse
import multiprocessing
import os
import socket
import ssl
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import Instance  # noqa: E402
from test_tlsproxy import HOST, encode_record, make_certs  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def client_loop(port, ca, resume, stop_at, counter):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    session = None
    done = 0
    while time.monotonic() < stop_at:
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        with ctx.wrap_socket(raw, server_hostname=HOST,
                             session=session if resume else None) as tls:
            # One byte from the caller: the ticket arrives before it.
            tls.recv(1)
            if resume:
                session = tls.session
        done += 1
    with counter.get_lock():
        counter.value += done


def caller_loop(inst, listener, stop, stats):
    path = os.path.join(inst.queue_dir, "private", "tlsproxy")
    while not stop.is_set():
        try:
            conn, addr = listener.accept()
        except socket.timeout:
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        socket.send_fds(sock, [encode_record([("role", "server"),
                                              ("peer", "bench[%s]:%d" % addr)])],
                        [conn.fileno()])
        conn.close()
        data = b""
        while b"\n\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        if b"status=ok" in data:
            stats["ok"] += 1
            stats["resumed"] += b"resumed=yes" in data
            sock.sendall(b"x")
        sock.close()


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def run(inst, ca, resume, seconds, clients):
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    listener.settimeout(0.2)
    stop = threading.Event()
    stats = {"ok": 0, "resumed": 0}
    callers = [threading.Thread(target=caller_loop, args=(inst, listener, stop, stats))
               for _ in range(2)]
    for t in callers:
        t.start()
    pids = inst.service_pids()["tlsproxy"]
    cpu_before = cpu_seconds(pids)
    counter = multiprocessing.Value("i", 0)
    stop_at = time.monotonic() + seconds
    procs = [multiprocessing.Process(target=client_loop,
                                     args=(listener.getsockname()[1], ca, resume,
                                           stop_at, counter))
             for _ in range(clients)]
    started = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pids) - cpu_before
    stop.set()
    for t in callers:
        t.join()
    listener.close()
    return stats, counter.value / elapsed, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()

    inst = Instance()
    certs = os.path.join(inst.dir, "certs")
    make_certs(certs)
    inst.main_cf["smtpd_tls_chain_files"] = os.path.join(certs, "server-chain.pem")
    inst.write_main_cf()
    inst.start()
    inst.wait_for_service("tlsproxy")
    time.sleep(0.5)
    try:
        for resume in (False, True):
            stats, rate, cpu = run(inst, os.path.join(certs, "ca.pem"), resume,
                                   args.seconds, args.clients)
            label = "resumed" if resume else "full"
            print("%s TLS 1.3 handshakes: %.0f/s (%d ok, %d resumed); "
                  "tlsproxy CPU %.2f ms per handshake"
                  % (label, rate, stats["ok"], stats["resumed"],
                     1000 * cpu / max(stats["ok"], 1)))
    finally:
        inst.stop()


if __name__ == "__main__":
    main()
