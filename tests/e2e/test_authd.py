"""End-to-end tests of authd, driven directly over private/authd.

One instance serves the whole class: a real sasldb made with saslpasswd2,
a SASL configuration in the instance's config directory, and a fake
saslauthd on a UNIX socket that replies to one user ("slow") only after
SLOW_SECONDS, so that a blocking check is there to get stuck behind.
Each test uses its own client addresses so that the throttle counters of
one test do not reach another.
"""

import base64
import hashlib
import hmac
import os
import pwd
import signal
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AUTHD_USER_WHEN_ROOT, BUILD_DIR, SASLPASSWD2,  # noqa: E402
                     Instance, create_sasldb, is_root)

AUTHD = os.path.join(BUILD_DIR, "authd", "authd")
DOMAIN = "example.test"
PASSWORD = "Tr0ub4dor-e2e-x7"
SLOW_SECONDS = 2.0
FAILURE_DELAY_MS = 20
LOCKOUT_FAILURES = 10
LOCKOUT_WINDOW_S = 3


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def encode_record(items):
    """Wire form of a list of (name, value) pairs (lib/attr.h)."""
    out = []
    for name, value in items:
        value = (value.replace("%", "%25").replace("\n", "%0A")
                 .replace("\r", "%0D").replace("\0", "%00"))
        out.append("%s=%s\n" % (name, value))
    out.append("\n")
    return "".join(out).encode()


def unescape(value):
    result, i = [], 0
    while i < len(value):
        if value[i] == "%" and i + 2 < len(value) + 1:
            result.append(chr(int(value[i + 1:i + 3], 16)))
            i += 3
        else:
            result.append(value[i])
            i += 1
    return "".join(result)


class AuthdConnection:
    """A client of authd: sends records and reads replies by session."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.pending = {}

    def close(self):
        self.sock.close()

    def send(self, **attrs):
        self.sock.sendall(encode_record(list(attrs.items())))

    def _read_record(self):
        while b"\n\n" not in self.buf and not self.buf.startswith(b"\n"):
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("authd closed the connection")
            self.buf += data
        end = self.buf.index(b"\n\n") + 2
        raw, self.buf = self.buf[:end], self.buf[end:]
        record = {}
        for line in raw.decode().split("\n"):
            if line:
                name, value = line.split("=", 1)
                record[name] = unescape(value)
        return record

    def reply(self, session):
        """The reply to session, keeping replies to others for later."""
        if session in self.pending:
            return self.pending.pop(session)
        while True:
            record = self._read_record()
            if record.get("session") == session:
                return record
            self.pending[record.get("session")] = record

    def call(self, **attrs):
        self.send(**attrs)
        return self.reply(attrs["session"])

    def plain(self, session, user, password, address="192.0.2.1"):
        response = b64("\0%s\0%s" % (user, password))
        return self.call(request="start", session=session, mechanism="PLAIN",
                         response=response, client_address=address,
                         encrypted="yes")


class FakeSaslauthd(threading.Thread):
    """saslauthd's protocol: four counted strings in, one counted out.

    The user "slow" with password "slowpass" gets OK after SLOW_SECONDS;
    every other request gets NO at once.
    """

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(64)
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def read_counted(conn):
        head = b""
        while len(head) < 2:
            chunk = conn.recv(2 - len(head))
            if not chunk:
                raise EOFError
            head += chunk
        (length,) = struct.unpack(">H", head)
        data = b""
        while len(data) < length:
            chunk = conn.recv(length - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def serve(self, conn):
        with conn:
            try:
                login, password = self.read_counted(conn), self.read_counted(conn)
                self.read_counted(conn)
                self.read_counted(conn)
            except (EOFError, OSError):
                return
            if login.split(b"@")[0] == b"slow" and password == b"slowpass":
                time.sleep(SLOW_SECONDS)
                answer = b"OK"
            else:
                answer = b"NO authentication failed"
            conn.sendall(struct.pack(">H", len(answer)) + answer)

    def close(self):
        self.stopped = True
        self.sock.close()


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class AuthdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(main_cf={
            "authd_mechanisms": "PLAIN LOGIN CRAM-MD5 NTLM",
            "authd_failure_delay": "%dms" % FAILURE_DELAY_MS,
            "authd_lockout_failures": str(LOCKOUT_FAILURES),
            "authd_lockout_window": "%ds" % LOCKOUT_WINDOW_S,
            "smtpd_sasl_local_domain": DOMAIN,
        })
        inst = cls.inst
        cls.sasldb = create_sasldb(inst, ("alice", "carol", "dave"), PASSWORD, DOMAIN)

        cls.saslauthd = FakeSaslauthd(os.path.join(inst.dir, "saslauthd-mux"))
        cls.saslauthd.start()
        sasl_dir = os.path.join(inst.config_dir, "sasl")
        os.makedirs(sasl_dir)
        with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop saslauthd\n"
                    "auxprop_plugin: sasldb\n"
                    "sasldb_path: %s\n"
                    "saslauthd_path: %s\n"
                    "mech_list: PLAIN LOGIN CRAM-MD5 DIGEST-MD5 NTLM\n"
                    % (cls.sasldb, cls.saslauthd.path))
        inst.start()
        inst.wait_for_service("authd")
        cls.socket_path = os.path.join(inst.queue_dir, "private", "authd")
        cls.wait_for_socket()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.saslauthd.close()

    @classmethod
    def wait_for_socket(cls, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = AuthdConnection(cls.socket_path)
                reply = conn.call(request="mechanisms", session="probe",
                                  encrypted="yes")
                conn.close()
                if reply.get("result") == "ok":
                    return
            except (OSError, EOFError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("authd does not answer; log:\n" + cls.inst.log_text())
            time.sleep(0.1)

    def setUp(self):
        self.conn = AuthdConnection(self.socket_path)

    def tearDown(self):
        self.conn.close()

    def test_mechanisms_filtered(self):
        reply = self.conn.call(request="mechanisms", session="m1", encrypted="yes")
        self.assertEqual(reply["result"], "ok")
        self.assertEqual(reply["mechanisms"], "PLAIN LOGIN CRAM-MD5")
        # noplaintext applies without TLS (smtpd_sasl_security_options).
        reply = self.conn.call(request="mechanisms", session="m2", encrypted="no")
        self.assertEqual(reply["mechanisms"], "CRAM-MD5")

    def test_plain_ok(self):
        reply = self.conn.plain("p1", "alice", PASSWORD, "192.0.2.10")
        self.assertEqual(reply["result"], "ok", reply)
        # libsasl2 appends smtpd_sasl_local_domain to a name without a realm.
        self.assertEqual(reply["user"], "alice@" + DOMAIN)
        reply = self.conn.plain("p2", "alice@" + DOMAIN, PASSWORD, "192.0.2.10")
        self.assertEqual(reply["result"], "ok", reply)
        self.assertEqual(reply["user"], "alice@" + DOMAIN)

    def test_plain_empty_initial_response_then_step(self):
        reply = self.conn.call(request="start", session="e1", mechanism="PLAIN",
                               client_address="192.0.2.11", encrypted="yes")
        self.assertEqual(reply["result"], "continue", reply)
        self.assertEqual(reply["challenge"], "")
        reply = self.conn.call(request="step", session="e1",
                               response=b64("\0dave\0" + PASSWORD))
        self.assertEqual(reply["result"], "ok", reply)
        self.assertEqual(reply["user"], "dave@" + DOMAIN)

    def test_login_two_steps(self):
        reply = self.conn.call(request="start", session="l1", mechanism="LOGIN",
                               client_address="192.0.2.12", encrypted="yes")
        self.assertEqual(reply["result"], "continue", reply)
        self.assertEqual(base64.b64decode(reply["challenge"]), b"Username:")
        reply = self.conn.call(request="step", session="l1", response=b64("alice"))
        self.assertEqual(reply["result"], "continue", reply)
        self.assertEqual(base64.b64decode(reply["challenge"]), b"Password:")
        reply = self.conn.call(request="step", session="l1", response=b64(PASSWORD))
        self.assertEqual(reply["result"], "ok", reply)
        self.assertEqual(reply["user"], "alice@" + DOMAIN)

    def test_cram_md5(self):
        reply = self.conn.call(request="start", session="c1", mechanism="CRAM-MD5",
                               client_address="192.0.2.13", encrypted="no")
        self.assertEqual(reply["result"], "continue", reply)
        challenge = base64.b64decode(reply["challenge"])
        digest = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        reply = self.conn.call(request="step", session="c1",
                               response=b64("alice %s" % digest))
        self.assertEqual(reply["result"], "ok", reply)
        self.assertEqual(reply["user"], "alice@" + DOMAIN)

    def test_plaintext_refused_without_tls(self):
        reply = self.conn.call(request="start", session="t1", mechanism="PLAIN",
                               response=b64("\0alice\0" + PASSWORD),
                               client_address="192.0.2.14", encrypted="no")
        self.assertEqual(reply["result"], "fail")
        self.assertEqual(reply["failure"], "mechanism")

    def test_ntlm_and_unknown_mechanism_refused(self):
        for i, mech in enumerate(("NTLM", "DIGEST-MD5", "X-UNKNOWN")):
            reply = self.conn.call(request="start", session="n%d" % i, mechanism=mech,
                                   client_address="192.0.2.15", encrypted="yes")
            self.assertEqual(reply["result"], "fail", mech)
            self.assertEqual(reply["failure"], "mechanism", mech)
            self.assertEqual(reply["temporary"], "no", mech)

    def test_wrong_password_and_unknown_user_identical(self):
        wrong = self.conn.plain("w1", "alice", "not-the-password", "192.0.2.20")
        unknown = self.conn.plain("w2", "nosuchuser", "not-the-password", "192.0.2.21")
        for reply in (wrong, unknown):
            self.assertEqual(reply["result"], "fail")
            self.assertEqual(reply["failure"], "credentials")
            self.assertEqual(reply["temporary"], "no")
        del wrong["session"], unknown["session"]
        self.assertEqual(wrong, unknown)

    def test_cancel_and_abort(self):
        reply = self.conn.call(request="start", session="x1", mechanism="PLAIN",
                               response="*", client_address="192.0.2.30",
                               encrypted="yes")
        self.assertEqual(reply["failure"], "cancelled")

        self.conn.call(request="start", session="x2", mechanism="LOGIN",
                       client_address="192.0.2.30", encrypted="yes")
        reply = self.conn.call(request="step", session="x2", response="*")
        self.assertEqual(reply["result"], "fail")
        self.assertEqual(reply["failure"], "cancelled")
        reply = self.conn.call(request="step", session="x2", response=b64("alice"))
        self.assertEqual(reply["failure"], "request")

        self.conn.call(request="start", session="x3", mechanism="LOGIN",
                       client_address="192.0.2.30", encrypted="yes")
        self.conn.send(request="abort", session="x3")
        reply = self.conn.call(request="step", session="x3", response=b64("alice"))
        self.assertEqual(reply["failure"], "request")
        self.assertEqual(reply["reason"], "unknown session")
        # The id is free again after the abort.
        reply = self.conn.call(request="start", session="x3", mechanism="LOGIN",
                               client_address="192.0.2.30", encrypted="yes")
        self.assertEqual(reply["result"], "continue")

    def test_invalid_base64_rejected(self):
        reply = self.conn.call(request="start", session="b1", mechanism="PLAIN",
                               response="not base64!", client_address="192.0.2.31",
                               encrypted="yes")
        self.assertEqual(reply["result"], "fail")
        self.assertEqual(reply["failure"], "syntax")
        self.conn.call(request="start", session="b2", mechanism="LOGIN",
                       client_address="192.0.2.31", encrypted="yes")
        reply = self.conn.call(request="step", session="b2", response="YWxpY2U")
        self.assertEqual(reply["failure"], "syntax")
        # The exchange is over after a syntax error.
        reply = self.conn.call(request="step", session="b2", response=b64("alice"))
        self.assertEqual(reply["reason"], "unknown session")

    def test_malformed_request_keeps_connection(self):
        reply = self.conn.call(request="login", session="r1")
        self.assertEqual(reply["failure"], "request")
        reply = self.conn.call(request="start", session="r2", mechanism="PLAIN",
                               encrypted="yes")
        self.assertEqual(reply["failure"], "request")
        reply = self.conn.plain("r3", "alice", PASSWORD, "192.0.2.32")
        self.assertEqual(reply["result"], "ok")

    def test_throttle_lockout_then_window_ends(self):
        address = "192.0.2.40"
        started = time.monotonic()
        elapsed = []
        for i in range(LOCKOUT_FAILURES):
            t0 = time.monotonic()
            reply = self.conn.plain("f%d" % i, "carol", "wrong%d" % i, address)
            elapsed.append(time.monotonic() - t0)
            self.assertEqual(reply["failure"], "credentials", reply)
        # The lockout lasts one window from the tenth failure, which authd
        # counted before its delayed reply.
        locked_at = time.monotonic() - elapsed[-1]
        self.assertLess(time.monotonic() - started, LOCKOUT_WINDOW_S)
        # The delay grows with each failure: FAILURE_DELAY_MS times the count.
        self.assertGreaterEqual(elapsed[-1], LOCKOUT_FAILURES * FAILURE_DELAY_MS / 1000.0 * 0.9)
        self.assertLess(elapsed[0], elapsed[-1])

        # Locked out: the right password gets a temporary failure, from
        # this address and for this user from another address.
        reply = self.conn.plain("f-locked", "carol", PASSWORD, address)
        self.assertEqual(reply["failure"], "throttled", reply)
        self.assertEqual(reply["temporary"], "yes")
        reply = self.conn.plain("f-user", "carol", PASSWORD, "192.0.2.41")
        self.assertEqual(reply["failure"], "throttled", reply)
        self.assertIn("lockout: client address 192.0.2.40 locked out", self.inst.log_text())
        self.assertIn("lockout: user carol@%s locked out" % DOMAIN, self.inst.log_text())

        time.sleep(max(0, locked_at + LOCKOUT_WINDOW_S + 0.3 - time.monotonic()))
        reply = self.conn.plain("f-after", "carol", PASSWORD, address)
        self.assertEqual(reply["result"], "ok", reply)

    def test_slow_check_does_not_block_others(self):
        # The slow login goes first on this connection; twenty logins on
        # the same and on another connection must not wait for it.
        started = time.monotonic()
        self.conn.send(request="start", session="slow", mechanism="PLAIN",
                       response=b64("\0slow\0slowpass"), client_address="192.0.2.50",
                       encrypted="yes")
        other = AuthdConnection(self.socket_path)
        try:
            for i in range(10):
                reply = self.conn.plain("fast%d" % i, "alice", PASSWORD, "192.0.2.51")
                self.assertEqual(reply["result"], "ok", reply)
                reply = other.plain("other%d" % i, "dave", PASSWORD, "192.0.2.52")
                self.assertEqual(reply["result"], "ok", reply)
        finally:
            other.close()
        fast_done = time.monotonic() - started
        self.assertLess(fast_done, SLOW_SECONDS * 0.75)
        reply = self.conn.reply("slow")
        self.assertEqual(reply["result"], "ok", reply)
        self.assertEqual(reply["user"], "slow@" + DOMAIN)
        self.assertGreaterEqual(time.monotonic() - started, SLOW_SECONDS * 0.9)

    def test_failure_delay_does_not_block_others(self):
        # Build up a long delay for one address, then check that another
        # session's login on the same connection is answered first.
        address = "192.0.2.60"
        for i in range(5):
            self.conn.plain("d%d" % i, "dave", "wrong", address)
        self.conn.send(request="start", session="delayed", mechanism="PLAIN",
                       response=b64("\0dave\0wrong"), client_address=address,
                       encrypted="yes")
        t0 = time.monotonic()
        reply = self.conn.plain("prompt", "alice", PASSWORD, "192.0.2.61")
        self.assertEqual(reply["result"], "ok")
        self.assertLess(time.monotonic() - t0, 6 * FAILURE_DELAY_MS / 1000.0)
        self.assertEqual(self.conn.reply("delayed")["failure"], "credentials")

    def test_runs_as_authd_user(self):
        if not is_root():
            self.skipTest("needs root to switch users")
        pid = self.inst.wait_for_service("authd")[0]
        with open("/proc/%d/status" % pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        expected = str(pwd.getpwnam(AUTHD_USER_WHEN_ROOT).pw_uid)
        self.assertEqual(uids, [expected] * 4)

    def test_restart_after_kill(self):
        old = self.inst.wait_for_service("authd")
        # A connection still in the listen backlog would be served by the
        # next authd, so make sure the old process has accepted this one.
        reply = self.conn.plain("k0", "alice", PASSWORD, "192.0.2.70")
        self.assertEqual(reply["result"], "ok", reply)
        os.kill(old[0], signal.SIGKILL)
        with self.assertRaises((EOFError, OSError)):
            self.conn.plain("k1", "alice", PASSWORD, "192.0.2.70")
        deadline = time.monotonic() + 15
        while True:
            pids = self.inst.service_pids().get("authd", [])
            if pids and pids != old:
                break
            self.assertLess(time.monotonic(), deadline, "master did not restart authd")
            time.sleep(0.1)
        self.wait_for_socket()
        conn = AuthdConnection(self.socket_path)
        try:
            reply = conn.plain("k2", "alice", PASSWORD, "192.0.2.70")
            self.assertEqual(reply["result"], "ok", reply)
        finally:
            conn.close()

    def test_zz_password_in_no_log(self):
        # Runs last (unittest sorts by name), after every login above.
        self.conn.plain("z1", "alice", PASSWORD, "192.0.2.80")
        self.conn.plain("z2", "alice", PASSWORD + "-wrong", "192.0.2.80")
        secrets = [PASSWORD.encode(), b64("\0alice\0" + PASSWORD).encode(),
                   b64(PASSWORD).encode()]
        found = []
        for root, _dirs, files in os.walk(self.inst.dir):
            for name in files:
                path = os.path.join(root, name)
                if path.startswith(os.path.join(self.inst.dir, "sasl-data")):
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                found += [path for s in secrets if s in data]
        self.assertEqual(found, [])
        self.assertIn("PLAIN login: client=192.0.2.80 user=alice@" + DOMAIN,
                      self.inst.log_text())


if __name__ == "__main__":
    unittest.main()
