#!/usr/bin/env python3
"""authd benchmark: successful AUTH PLAIN logins per second with sasldb.

Starts a private Postern instance (tests/e2e/harness.py) whose authd
checks passwords in a sasldb made with saslpasswd2, then drives
private/authd directly from several client processes. Each process
keeps --window PLAIN start requests in flight on one connection and
counts the "result=ok" replies for --seconds. Prints logins per second
and authd's CPU time per login (from /proc).

Usage: bench/authd.py [--clients 4] [--window 16] [--seconds 5]
"""

import argparse
import multiprocessing
import os
import pwd
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from harness import Instance, is_root  # noqa: E402
from test_authd import AuthdConnection, b64, encode_record  # noqa: E402

DOMAIN = "example.test"
PASSWORD = "bench-password-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def client(path, window, seconds, index, results):
    """Keeps window logins in flight; puts (ok, failed) on results."""
    conn = AuthdConnection(path, timeout=30)
    response = b64("\0alice\0" + PASSWORD)
    ok = failed = sent = 0
    deadline = time.monotonic() + seconds

    def send_one():
        nonlocal sent
        conn.sock.sendall(encode_record([
            ("request", "start"), ("session", "c%d-%d" % (index, sent)),
            ("mechanism", "PLAIN"), ("response", response),
            ("client_address", "192.0.2.%d" % (index + 1)), ("encrypted", "yes")]))
        sent += 1

    for _ in range(window):
        send_one()
    while ok + failed < sent:
        record = conn._read_record()
        if record.get("result") == "ok":
            ok += 1
        else:
            failed += 1
        if time.monotonic() < deadline:
            send_one()
    conn.close()
    results.put((ok, failed))


def make_instance():
    inst = Instance()
    data_dir = os.path.join(inst.dir, "sasl-data")
    os.makedirs(data_dir)
    sasldb = os.path.join(data_dir, "sasldb2")
    subprocess.run(["saslpasswd2", "-c", "-p", "-f", sasldb, "-u", DOMAIN, "alice"],
                   input=PASSWORD + "\n", text=True, check=True)
    if is_root():
        pw = pwd.getpwnam("postern-auth")
        os.chown(sasldb, pw.pw_uid, pw.pw_gid)
    os.chmod(sasldb, 0o600)
    sasl_dir = os.path.join(inst.config_dir, "sasl")
    os.makedirs(sasl_dir)
    with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as f:
        f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                "sasldb_path: %s\nmech_list: PLAIN LOGIN\n" % sasldb)
    inst.main_cf["smtpd_sasl_local_domain"] = DOMAIN
    inst.write_main_cf()
    return inst


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()

    inst = make_instance()
    inst.start()
    try:
        pid = inst.wait_for_service("authd")[0]
        path = os.path.join(inst.queue_dir, "private", "authd")
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        probe = AuthdConnection(path)
        reply = probe.call(request="start", session="probe", mechanism="PLAIN",
                           response=b64("\0alice\0" + PASSWORD),
                           client_address="192.0.2.250", encrypted="yes")
        probe.close()
        if reply.get("result") != "ok":
            sys.exit("probe login failed: %r\n%s" % (reply, inst.log_text()))

        results = multiprocessing.Queue()
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        procs = [multiprocessing.Process(target=client, args=(
            path, args.window, args.seconds, i, results)) for i in range(args.clients)]
        for p in procs:
            p.start()
        totals = [results.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
    finally:
        inst.stop()

    ok = sum(t[0] for t in totals)
    failed = sum(t[1] for t in totals)
    print("clients=%d window=%d seconds=%.1f" % (args.clients, args.window, elapsed))
    print("successful PLAIN logins: %d (%.0f per second), failed: %d"
          % (ok, ok / elapsed, failed))
    if ok:
        print("authd CPU per login: %.3f ms" % (1000.0 * cpu / ok))


if __name__ == "__main__":
    main()
