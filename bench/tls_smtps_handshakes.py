#!/usr/bin/env python3
"""TLS handshake rate through smtpd on a wrapper-mode (port 465) listener.

Starts a private Postern instance with test certificates
(tests/e2e/harness.py, Instance(tls=True)), whose smtps listener runs
smtpd with smtpd_tls_wrappermode = yes. For --seconds each, --clients
client processes repeat one SMTP session: connect, TLS 1.3 handshake
(Python ssl, trusting only the test root CA and checking the host
name), read the 220 banner, send QUIT, read the 221 reply, close. The
first pass makes a full handshake every time; the second resumes with
the session ticket of the client's previous session. Prints sessions
per second, how many were really resumed (from the client's
session_reused), and the CPU time that tlsproxy and smtpd spent per
session.

Every session goes through master's accept, smtpd, the descriptor
handoff to tlsproxy and the relay back to smtpd, so this is what a
client of port 465 sees; bench/tls_handshakes.py measures tlsproxy
alone. The clients are Python on the same machine, so the rates are
lower bounds.

Usage: bench/tls_smtps_handshakes.py [--seconds 5] [--clients 2]
           [--cert rsa|ecdsa|both] [--smtpd-processes 4]
"""

import argparse
import multiprocessing
import os
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import Instance  # noqa: E402

HOST = "mail.example.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def read_reply(tls):
    """Reads one SMTP reply (all its lines); returns its code."""
    data = b""
    while True:
        chunk = tls.recv(4096)
        if not chunk:
            raise ConnectionError("server closed after %r" % data)
        data += chunk
        lines = data.split(b"\r\n")
        # A complete reply ends with a "NNN " line and CRLF.
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return int(lines[-2][:3])


def client_loop(port, ca, resume, stop_at, counters):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    session = None
    done = reused = failed = 0
    while time.monotonic() < stop_at:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=20)
            with ctx.wrap_socket(raw, server_hostname=HOST,
                                 session=session if resume else None) as tls:
                if read_reply(tls) != 220:
                    raise ConnectionError("no 220 banner")
                tls.sendall(b"QUIT\r\n")
                if read_reply(tls) != 221:
                    raise ConnectionError("no 221 reply to QUIT")
                reused += tls.session_reused
                if resume:
                    # The ticket came before the banner, so it is here.
                    session = tls.session
            done += 1
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            failed += 1
            if failed == 1:
                print("client error: %r" % exc, file=sys.stderr)
    with counters.get_lock():
        counters[0] += done
        counters[1] += reused
        counters[2] += failed


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def service_cpu(inst):
    pids = inst.service_pids()
    return {name: cpu_seconds(pids.get(name, [])) for name in ("tlsproxy", "smtpd")}


def run(inst, resume, seconds, clients):
    before = service_cpu(inst)
    counters = multiprocessing.Array("i", 3)
    stop_at = time.monotonic() + seconds
    procs = [multiprocessing.Process(target=client_loop,
                                     args=(inst.smtps_port, inst.tls_ca, resume,
                                           stop_at, counters))
             for _ in range(clients)]
    started = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    # smtpd processes started during the run are counted from 0; the
    # ones that exited in it are lost, so the smtpd figure is a floor.
    after = service_cpu(inst)
    cpu = {k: after[k] - before.get(k, 0) for k in after}
    return list(counters), elapsed, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--cert", choices=("rsa", "ecdsa", "both"), default="rsa")
    parser.add_argument("--smtpd-processes", type=int, default=4)
    args = parser.parse_args()

    inst = Instance(tls=True)
    chains = {"rsa": ["server-chain.pem"], "ecdsa": ["server-ec-chain.pem"],
              "both": ["server-chain.pem", "server-ec-chain.pem"]}[args.cert]
    inst.main_cf["smtpd_tls_chain_files"] = ", ".join(
        os.path.join(inst.certs_dir, c) for c in chains)
    inst.write_main_cf()
    # Let master run several smtpd processes for the wrapper-mode port,
    # as the shipped master.cf does ("-" is the default limit); the
    # harness wrote master.cf with 1.
    old = "127.0.0.1:%d inet n - n - 1 smtpd" % inst.smtps_port
    new = "127.0.0.1:%d inet n - n - %d smtpd" % (inst.smtps_port,
                                                   args.smtpd_processes)
    path = os.path.join(inst.config_dir, "master.cf")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace(old, new))
    inst.start()
    time.sleep(0.5)
    try:
        for resume in (False, True):
            (done, reused, failed), elapsed, cpu = run(inst, resume, args.seconds,
                                                       args.clients)
            label = "resumed" if resume else "full"
            print("%s TLS 1.3 sessions on the wrapper-mode port: %.0f/s "
                  "(%d in %.1f s, %d resumed, %d failed); CPU per session: "
                  "tlsproxy %.2f ms, smtpd %.2f ms"
                  % (label, done / elapsed, done, elapsed, reused, failed,
                     1000 * cpu["tlsproxy"] / max(done, 1),
                     1000 * cpu["smtpd"] / max(done, 1)))
    finally:
        inst.stop()


if __name__ == "__main__":
    main()
