#!/usr/bin/env python3
"""smtpd AUTH benchmark: SMTP sessions with a successful AUTH PLAIN per
second, through smtpd and authd with a sasldb.

Starts a private Postern instance (tests/e2e/harness.py) with AUTH
allowed without TLS (smtpd_tls_auth_only = no) so that the number
measures smtpd, authd and libsasl2 rather than TLS handshakes. Each of
--clients processes runs sessions one after another for --seconds:
connect, EHLO, AUTH PLAIN with an initial response, QUIT. Prints the
successful logins per second and the CPU time per login of smtpd and
authd (from /proc).

Usage: bench/smtpd_auth.py [--clients 8] [--seconds 5]
"""

import argparse
import base64
import multiprocessing
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import Instance  # noqa: E402
from test_smtp_auth import PASSWORD, make_sasldb  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def read_reply(sock_file):
    """Returns the code of the next (possibly multi-line) reply."""
    while True:
        line = sock_file.readline()
        if not line:
            raise EOFError("server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


def client(port, seconds, results):
    response = base64.b64encode(("\0alice\0" + PASSWORD).encode()).decode()
    ok = failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            f = sock.makefile("rb")
            read_reply(f)
            sock.sendall(b"EHLO bench.test\r\n")
            read_reply(f)
            sock.sendall(("AUTH PLAIN %s\r\n" % response).encode())
            if read_reply(f) == 235:
                ok += 1
            else:
                failed += 1
            sock.sendall(b"QUIT\r\n")
            read_reply(f)
    results.put((ok, failed))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()

    inst = Instance(main_cf={
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_tls_auth_only": "no",
        "smtpd_sasl_security_options": "noanonymous",
        "smtpd_sasl_local_domain": "example.test",
    })
    make_sasldb(inst, ["alice"])
    try:
        inst.start()
        inst.wait_for_service("authd")
        time.sleep(0.5)
        pids = inst.service_pids()
        watched = {name: pids[name] for name in ("smtpd", "authd")}
        before = {name: sum(cpu_seconds(p) for p in ps) for name, ps in watched.items()}
        results = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=client,
                                         args=(inst.smtp_port, args.seconds, results))
                 for _ in range(args.clients)]
        start = time.monotonic()
        for p in procs:
            p.start()
        totals = [results.get() for _ in procs]
        elapsed = time.monotonic() - start
        for p in procs:
            p.join()
        after = {name: sum(cpu_seconds(p) for p in ps) for name, ps in watched.items()}
        ok = sum(t[0] for t in totals)
        failed = sum(t[1] for t in totals)
        print("sessions with a successful AUTH PLAIN: %d (%.0f per second), failed: %d"
              % (ok, ok / elapsed, failed))
        for name in watched:
            print("%s CPU per login: %.3f ms" % (
                name, 1000 * (after[name] - before[name]) / max(ok, 1)))
    finally:
        inst.stop()


if __name__ == "__main__":
    main()
