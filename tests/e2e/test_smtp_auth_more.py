"""End-to-end tests of SMTP AUTH in smtpd: challenge-response mechanisms
and a slow credential check among other sessions.

ScramCramTest enables SCRAM-SHA-256 and CRAM-MD5 through authd_mechanisms
on an instance whose sasldb was made with saslpasswd2, and logs in over
STARTTLS with a SCRAM client written here (RFC 5802, RFC 7677), because
smtplib has none. SlowCheckTest puts a fake saslauthd that takes
SLOW_SECONDS for one user behind authd, and checks that the one smtpd
process of a port serves other sessions while that check runs.
"""

import base64
import hashlib
import hmac
import os
import pwd
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Instance, is_root  # noqa: E402

SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
AUTHD = os.path.join(BUILD_DIR, "authd", "authd")
SCRAM_PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/sasl2"
DOMAIN = "example.test"
PASSWORD = "Quince-4e2e-Rm8sTz"
SLOW_USER = "slow"
SLOW_PASSWORD = "slowpass"
SLOW_SECONDS = 3.0
AUTH_FAILED = (535, b"5.7.8 Error: authentication failed: authentication failure")


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def plain(user, password):
    return b64("\0%s\0%s" % (user, password))


def write_sasl_config(inst, users, pwcheck_method="auxprop", extra=""):
    """Create a sasldb for users with saslpasswd2 and authd's SASL
    configuration without mech_list, so authd_mechanisms decides."""
    data_dir = os.path.join(inst.dir, "sasl-data")
    os.makedirs(data_dir)
    sasldb = os.path.join(data_dir, "sasldb2")
    for user in users:
        subprocess.run([SASLPASSWD2, "-c", "-p", "-f", sasldb, "-u", DOMAIN, user],
                       input=PASSWORD + "\n", text=True, check=True)
    os.chmod(sasldb, 0o600)
    if is_root():
        pw = pwd.getpwnam("postern-auth")
        os.chown(sasldb, pw.pw_uid, pw.pw_gid)
        os.chown(data_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(data_dir, 0o700)
    sasl_dir = os.path.join(inst.config_dir, "sasl")
    os.makedirs(sasl_dir)
    with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as f:
        f.write("pwcheck_method: %s\nauxprop_plugin: sasldb\nsasldb_path: %s\n%s"
                % (pwcheck_method, sasldb, extra))


def tls_client(inst, port=None, source="127.0.0.1"):
    """An smtplib client after EHLO, STARTTLS and a second EHLO."""
    client = smtplib.SMTP("127.0.0.1", port or inst.smtp_port,
                          source_address=(source, 0), timeout=20)
    ctx = ssl.create_default_context(cafile=inst.tls_ca)
    ctx.check_hostname = False
    client.ehlo("client.test")
    client.starttls(context=ctx)
    client.ehlo("client.test")
    return client


def auth_line(client):
    """The "AUTH ..." line of the client's last EHLO reply, or None."""
    for line in client.ehlo_resp.decode().split("\n"):
        if line.startswith("AUTH "):
            return line
    return None


class ScramClient:
    """The client side of SCRAM-SHA-256 (RFC 5802 section 3, RFC 7677)
    without channel binding (gs2 header "n,,")."""

    def __init__(self, user, password):
        self.user = user.replace("=", "=3D").replace(",", "=2C")
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (self.user, self.nonce)
        self.server_signature = None
        self.verified = False

    def first(self):
        return "n,," + self.first_bare

    def final(self, server_first):
        """Return client-final-message for server-first-message."""
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not fields["r"].startswith(self.nonce) or fields["r"] == self.nonce:
            raise ValueError("server nonce does not extend the client nonce")
        salt = base64.b64decode(fields["s"])
        iterations = int(fields["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (b64("n,,"), fields["r"])
        auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message,
                                         hashlib.sha256).digest()
        return "%s,p=%s" % (without_proof, b64(proof))

    def verify(self, server_final):
        """Check server-final-message: the server knew the password too."""
        self.verified = server_final == "v=" + b64(self.server_signature)
        return self.verified


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
@unittest.skipUnless(os.path.exists(os.path.join(SCRAM_PLUGIN_DIR, "libscram.so")),
                     "the SCRAM plugin (libsasl2-modules) is missing")
class ScramCramTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(tls=True, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_local_domain": DOMAIN,
            "authd_mechanisms": "SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN",
            "authd_failure_delay": "10ms",
        })
        write_sasl_config(cls.inst, ["alice"])
        cls.inst.start()
        cls.inst.wait_for_service("authd")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def connect(self, source="127.0.0.1"):
        client = tls_client(self.inst, source=source)
        self.addCleanup(client.close)
        return client

    def scram(self, client, user, password):
        """Run AUTH SCRAM-SHA-256 with an initial response; return the
        last reply and the ScramClient."""
        scram = ScramClient(user, password)
        code, text = client.docmd("AUTH", "SCRAM-SHA-256 " + b64(scram.first()))
        self.assertEqual(code, 334, text)
        server_first = base64.b64decode(text).decode()
        code, text = client.docmd(b64(scram.final(server_first)))
        if code == 334:
            # RFC 4954 section 4: server-final-message travels in a
            # challenge, answered by an empty response, before the 235.
            self.assertTrue(scram.verify(base64.b64decode(text).decode()), text)
            code, text = client.docmd("")
        return (code, text), scram

    def test_ehlo_lists_scram_and_cram(self):
        client = self.connect()
        self.assertEqual(auth_line(client), "AUTH SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN")

    def test_scram_sha256_right_password(self):
        client = self.connect()
        reply, scram = self.scram(client, "alice", PASSWORD)
        self.assertEqual(reply, (235, b"2.7.0 Authentication successful"))
        self.assertTrue(scram.verified, "no server-final-message before the 235")
        # A logged-in client may relay.
        client.mail("alice@example.test")
        self.assertEqual(client.rcpt("friend@remote.test")[0], 250)
        self.assertIn("sasl_method=SCRAM-SHA-256", self.wait_log("sasl_method=SCRAM"))

    def test_scram_sha256_realm_in_name(self):
        client = self.connect()
        reply, _ = self.scram(client, "alice@" + DOMAIN, PASSWORD)
        self.assertEqual(reply[0], 235, reply)

    def test_scram_sha256_wrong_password(self):
        client = self.connect(source="127.0.0.21")
        reply, _ = self.scram(client, "alice", "not-the-password")
        self.assertEqual(reply, AUTH_FAILED)
        # The failed exchange is over and the session can log in again.
        reply, _ = self.scram(client, "alice", PASSWORD)
        self.assertEqual(reply[0], 235, reply)

    def test_scram_sha256_unknown_user(self):
        client = self.connect(source="127.0.0.22")
        scram = ScramClient("nosuchuser", PASSWORD)
        code, text = client.docmd("AUTH", "SCRAM-SHA-256 " + b64(scram.first()))
        if code == 334:
            code, text = client.docmd(b64(scram.final(base64.b64decode(text).decode())))
        self.assertEqual((code, text), AUTH_FAILED)

    # The SCRAM plugin of Cyrus libsasl2 2.1.28 fails an unknown user at
    # the first message; authd replies with a decoy challenge instead, so
    # the failure comes at the proof, as for a wrong password.
    def test_scram_sha256_unknown_user_gets_challenge(self):
        client = self.connect(source="127.0.0.24")
        scram = ScramClient("nosuchuser", PASSWORD)
        code, text = client.docmd("AUTH", "SCRAM-SHA-256 " + b64(scram.first()))
        self.assertEqual(code, 334, text)
        code, text = client.docmd(b64(scram.final(base64.b64decode(text).decode())))
        self.assertEqual((code, text), AUTH_FAILED)

    def server_first(self, user, source):
        """Send client-first-message for user; return the server's
        nonce suffix, salt and iteration count, and cancel."""
        client = self.connect(source=source)
        scram = ScramClient(user, PASSWORD)
        code, text = client.docmd("AUTH", "SCRAM-SHA-256 " + b64(scram.first()))
        self.assertEqual(code, 334, text)
        fields = dict(item.split("=", 1)
                      for item in base64.b64decode(text).decode().split(","))
        self.assertEqual(client.docmd("*")[0], 501)
        self.assertTrue(fields["r"].startswith(scram.nonce))
        return fields["r"][len(scram.nonce):], fields["s"], fields["i"]

    def test_scram_sha256_decoy_looks_like_real_user(self):
        real = [self.server_first("alice", "127.0.0.25") for _ in range(2)]
        decoy = [self.server_first("nosuchuser", "127.0.0.25") for _ in range(2)]
        for suffix, salt, iterations in real + decoy:
            self.assertRegex(suffix, r"^[A-Za-z0-9+/]{32}$")
            self.assertEqual(len(base64.b64decode(salt)), 32)
            self.assertEqual(iterations, real[0][2])
        # Each user keeps one salt across exchanges; nonces are fresh.
        self.assertEqual(real[0][1], real[1][1])
        self.assertEqual(decoy[0][1], decoy[1][1])
        self.assertNotEqual(decoy[0][1], real[0][1])
        self.assertNotEqual(decoy[0][0], decoy[1][0])
        self.assertNotEqual(self.server_first("otheruser", "127.0.0.25")[1],
                            decoy[0][1])

    def test_scram_sha256_without_initial_response(self):
        client = self.connect()
        code, text = client.docmd("AUTH", "SCRAM-SHA-256")
        self.assertEqual((code, text), (334, b""))
        scram = ScramClient("alice", PASSWORD)
        code, text = client.docmd(b64(scram.first()))
        self.assertEqual(code, 334, text)
        code, text = client.docmd(b64(scram.final(base64.b64decode(text).decode())))
        if code == 334:
            self.assertTrue(scram.verify(base64.b64decode(text).decode()), text)
            code, text = client.docmd("")
        self.assertEqual(code, 235, text)

    def test_scram_sha256_cancel(self):
        client = self.connect()
        scram = ScramClient("alice", PASSWORD)
        code, _ = client.docmd("AUTH", "SCRAM-SHA-256 " + b64(scram.first()))
        self.assertEqual(code, 334)
        self.assertEqual(client.docmd("*")[0], 501)
        reply, _ = self.scram(client, "alice", PASSWORD)
        self.assertEqual(reply[0], 235, reply)

    def cram(self, client, user, password):
        code, text = client.docmd("AUTH", "CRAM-MD5")
        self.assertEqual(code, 334, text)
        challenge = base64.b64decode(text)
        digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        return client.docmd(b64("%s %s" % (user, digest)))

    def test_cram_md5_passwords_and_unknown_user(self):
        client = self.connect(source="127.0.0.23")
        self.assertEqual(self.cram(client, "alice", "not-the-password"), AUTH_FAILED)
        self.assertEqual(self.cram(client, "nosuchuser", PASSWORD), AUTH_FAILED)
        self.assertEqual(self.cram(client, "alice", PASSWORD),
                         (235, b"2.7.0 Authentication successful"))

    def wait_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.inst.log_text()
            if needle in text:
                return text
            time.sleep(0.05)
        self.fail("no %r in the log" % needle)

    def test_zz_password_in_no_log(self):
        # Named to run last in the class, after the other logins.
        with open(self.inst.log_file, "rb") as f:
            text = f.read()
        self.assertNotIn(PASSWORD.encode(), text)


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class DefaultMechanismsTest(unittest.TestCase):
    """A SASL configuration without mech_list and authd_mechanisms left
    at its default offer PLAIN and LOGIN only, although the SCRAM and
    CRAM-MD5 plugins are installed and the sasldb could serve them."""

    def test_scram_not_offered_by_default(self):
        inst = Instance(tls=True, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_local_domain": DOMAIN,
        })
        self.addCleanup(inst.stop)
        write_sasl_config(inst, ["alice"])
        inst.start()
        inst.wait_for_service("authd")
        client = tls_client(inst)
        self.addCleanup(client.close)
        self.assertEqual(auth_line(client), "AUTH PLAIN LOGIN")
        scram = ScramClient("alice", PASSWORD)
        code, _ = client.docmd("AUTH", "SCRAM-SHA-256 " + b64(scram.first()))
        self.assertEqual(code, 504)
        self.assertEqual(client.docmd("AUTH", "CRAM-MD5")[0], 504)
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 235)


class SlowSaslauthd(threading.Thread):
    """A saslauthd on a UNIX socket: four counted strings in (login,
    password, service, realm), one counted string out ("OK" or "NO ...").

    SLOW_USER with SLOW_PASSWORD gets OK after SLOW_SECONDS; slow_started
    is set when such a check arrives. Every other check gets NO at once.
    """

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.slow_started = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(16)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def read_exactly(conn, size):
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def read_counted(self, conn):
        (length,) = struct.unpack(">H", self.read_exactly(conn, 2))
        return self.read_exactly(conn, length)

    def serve(self, conn):
        with conn:
            try:
                fields = [self.read_counted(conn) for _ in range(4)]
            except (EOFError, OSError):
                return
            login, password = fields[0], fields[1]
            if login.split(b"@")[0] == SLOW_USER.encode() and \
                    password == SLOW_PASSWORD.encode():
                self.slow_started.set()
                time.sleep(SLOW_SECONDS)
                answer = b"OK"
            else:
                answer = b"NO authentication failed"
            try:
                conn.sendall(struct.pack(">H", len(answer)) + answer)
            except OSError:
                pass

    def close(self):
        self.sock.close()


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class SlowCheckTest(unittest.TestCase):
    """One smtpd process per port (maxproc 1 in the harness's master.cf)
    and one authd: a login that waits SLOW_SECONDS in saslauthd must not
    hold up a mail transaction or another login on the same port."""

    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(tls=True, users=["alice", "bob"], main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_local_domain": DOMAIN,
        })
        cls.saslauthd = SlowSaslauthd(os.path.join(cls.inst.dir, "saslauthd-mux"))
        cls.saslauthd.start()
        write_sasl_config(cls.inst, ["alice"], pwcheck_method="auxprop saslauthd",
                          extra="saslauthd_path: %s\n" % cls.saslauthd.path)
        cls.inst.start()
        cls.inst.wait_for_service("authd")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.saslauthd.close()

    def test_slow_auth_does_not_block_other_sessions(self):
        # All sessions below use smtp_port, whose service runs one smtpd.
        self.assertIn("127.0.0.1:%d inet n - n - 1 smtpd\n" % self.inst.smtp_port,
                      self.inst.master_cf_text())
        slow_client = tls_client(self.inst)
        self.addCleanup(slow_client.close)
        slow_result = {}

        def slow_auth():
            started = time.monotonic()
            slow_result["reply"] = slow_client.docmd(
                "AUTH", "PLAIN " + plain(SLOW_USER, SLOW_PASSWORD))
            slow_result["seconds"] = time.monotonic() - started

        slow_thread = threading.Thread(target=slow_auth, daemon=True)
        started = time.monotonic()
        slow_thread.start()
        self.assertTrue(self.saslauthd.slow_started.wait(SLOW_SECONDS),
                        "the slow check never reached saslauthd")

        # A whole mail transaction on the same port, without AUTH.
        mail_started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20) as client:
            self.assertEqual(client.ehlo("other.test")[0], 250)
            self.assertEqual(client.mail("someone@outside.test")[0], 250)
            self.assertEqual(client.rcpt("bob@example.test")[0], 250)
            code, text = client.data("Subject: during-slow-auth\r\n\r\nbody\r\n")
            self.assertEqual(code, 250, text)
        mail_seconds = time.monotonic() - mail_started

        # A normal login on the same port, over STARTTLS.
        login_started = time.monotonic()
        client = tls_client(self.inst)
        self.addCleanup(client.close)
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD)),
                         (235, b"2.7.0 Authentication successful"))
        client.quit()
        login_seconds = time.monotonic() - login_started
        others_done = time.monotonic() - started

        self.assertNotIn("reply", slow_result, "the slow login finished first")
        self.assertLess(mail_seconds, SLOW_SECONDS / 3)
        self.assertLess(login_seconds, SLOW_SECONDS / 3)
        self.assertLess(others_done, SLOW_SECONDS * 0.75)

        slow_thread.join(SLOW_SECONDS + 15)
        self.assertEqual(slow_result.get("reply"),
                         (235, b"2.7.0 Authentication successful"))
        self.assertGreaterEqual(slow_result["seconds"], SLOW_SECONDS * 0.9)
        self.assertIn(b"Subject: during-slow-auth",
                      self.inst.wait_for_messages("bob", 1)[0])
        print("\nslow AUTH %.2f s; mail transaction %.3f s and AUTH %.3f s "
              "meanwhile" % (slow_result["seconds"], mail_seconds, login_seconds),
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
