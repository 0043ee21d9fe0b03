"""Hostile clients against STARTTLS, implicit TLS and SMTP AUTH.

One instance serves every test: a sasldb made with saslpasswd2 for alice,
bob, carol and dave; port 25 (smtp_port) with STARTTLS offered, AUTH after
TLS and reject_sender_login_mismatch; a listener configured like the
shipped submission service (TLS and AUTH before any mail) on sub_port;
and the harness's implicit-TLS listener on smtps_port. Clients connect
from 127.0.0.1, which is outside mynetworks, so relaying needs AUTH. Mail
to remote.test goes to a SmtpSink through relayhost. Tests that fail
logins use their own client addresses, because authd counts failures per
client address.
"""

import base64
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD_DIR, SASLPASSWD2, Instance, SmtpSink,  # noqa: E402
                     create_sasldb, free_port)

AUTHD = os.path.join(BUILD_DIR, "authd", "authd")
DOMAIN = "example.test"
PASSWORD = "Damson-5e2e-Kp3wYz"
LOCKOUT_FAILURES = 4
TIMEOUT = 20


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(authzid, authcid, password):
    return b64("%s\0%s\0%s" % (authzid, authcid, password))


class Client:
    """A line-level SMTP client on a raw socket, for input smtplib will
    not send: pipelined commands, NUL bytes, lines over the limit."""

    def __init__(self, port, source="127.0.0.1", implicit_tls=False, ca=None):
        self.ca = ca
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT,
                                             source_address=(source, 0))
        if implicit_tls:
            self.sock = self.context().wrap_socket(self.sock)
        self.buf = b""
        self.banner = self.reply()

    def context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        return ctx

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode()

    def reply(self):
        lines = []
        while True:
            lines.append(self.line())
            if len(lines[-1]) < 4 or lines[-1][3] != "-":
                return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self):
        reply = self.cmd("STARTTLS")
        if reply.startswith("220"):
            self.sock = self.context().wrap_socket(self.sock)
        return reply

    def unsolicited(self, wait=0.5):
        """Bytes the server sent without a command, within wait seconds."""
        self.sock.settimeout(wait)
        try:
            return self.buf + self.sock.recv(65536)
        except (socket.timeout, ssl.SSLError):
            return self.buf
        finally:
            self.sock.settimeout(TIMEOUT)


def client_hello_byte_by_byte(sock, ca):
    """Run a TLS handshake on sock, sending every client byte in its own
    packet. Returns the SSLObject and its two memory BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    tls = ctx.wrap_bio(incoming, outgoing)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = outgoing.read()
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            time.sleep(0.001)
        if done:
            return tls, incoming, outgoing
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection during the handshake")
        incoming.write(chunk)


def tls_command(sock, tls, incoming, outgoing, line):
    """Send line over an SSLObject and return the reply's first line."""
    tls.write(line.encode() + b"\r\n")
    sock.sendall(outgoing.read())
    data = b""
    while b"\r\n" not in data:
        try:
            data += tls.read(65536)
        except ssl.SSLWantReadError:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            incoming.write(chunk)
    return data.split(b"\r\n")[0].decode()


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class TlsAuthEdgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink()
        cls.sub_port = free_port()
        submission = (
            "127.0.0.1:%d inet n - n - 2 smtpd\n"
            "  -o syslog_name=postern/submission\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
            % cls.sub_port)
        logins = ", ".join("%s@%s=%s@%s" % (u, DOMAIN, u, DOMAIN)
                           for u in ("alice", "bob", "carol", "dave"))
        cls.inst = Instance(tls=True, users=["alice", "bob", "carol", "dave"],
                            master_cf_extra=submission, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_local_domain": DOMAIN,
            "smtpd_sender_login_maps": "inline:{ %s }" % logins,
            "smtpd_sender_restrictions": "reject_sender_login_mismatch",
            "relayhost": "[127.0.0.1]:%d" % cls.sink.port,
            "authd_failure_delay": "10ms",
            "authd_lockout_failures": str(LOCKOUT_FAILURES),
            "authd_lockout_window": "60s",
        })
        sasldb = create_sasldb(cls.inst, ["alice", "bob", "carol", "dave"],
                               PASSWORD, DOMAIN)
        sasl_dir = os.path.join(cls.inst.config_dir, "sasl")
        os.makedirs(sasl_dir)
        with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "sasldb_path: %s\nmech_list: PLAIN LOGIN\n" % sasldb)
        cls.inst.start()
        cls.inst.wait_for_service("authd")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.sink.close()

    def connect(self, port=None, source="127.0.0.1", starttls=True):
        port = port or self.inst.smtp_port
        client = Client(port, source, implicit_tls=port == self.inst.smtps_port,
                        ca=self.inst.tls_ca)
        self.addCleanup(client.close)
        client.cmd("EHLO client.test")
        if starttls and port != self.inst.smtps_port:
            self.assertTrue(client.starttls().startswith("220"))
            client.cmd("EHLO client.test")
        return client

    # ---- STARTTLS

    def test_starttls_pipelined_commands_dropped(self):
        for port in (self.inst.smtp_port, self.sub_port):
            with self.subTest(port=port):
                client = self.connect(port, starttls=False)
                client.send("STARTTLS\r\nMAIL FROM:<x@outside.test>\r\n"
                            "RCPT TO:<friend@remote.test>\r\nAUTH PLAIN %s\r\n"
                            % plain("", "alice", PASSWORD))
                self.assertEqual(client.reply(), "220 2.0.0 Ready to start TLS")
                client.sock = client.context().wrap_socket(client.sock)
                self.assertEqual(client.unsolicited(), b"")
                ehlo = client.cmd("EHLO client.test")
                # Still not logged in: AUTH is offered and relaying refused.
                self.assertIn("250-AUTH PLAIN LOGIN", ehlo.split("\n"))
                self.assertTrue(client.cmd("MAIL FROM:<x@outside.test>")
                                .startswith("250"))
                self.assertEqual(client.cmd("RCPT TO:<friend@remote.test>")[:3],
                                 "554")

    def test_starttls_lower_case_trailing_spaces(self):
        client = self.connect(starttls=False)
        self.assertEqual(client.cmd("starttls   "), "220 2.0.0 Ready to start TLS")
        client.sock = client.context().wrap_socket(client.sock)
        self.assertTrue(client.cmd("EHLO client.test").startswith("250-"))

    def test_client_hello_byte_by_byte(self):
        sock = socket.create_connection(("127.0.0.1", self.inst.smtps_port),
                                        timeout=TIMEOUT)
        self.addCleanup(sock.close)
        state = client_hello_byte_by_byte(sock, self.inst.tls_ca)
        self.assertEqual(tls_command(sock, *state, "NOOP")[:3], "220")

        client = self.connect(starttls=False)
        self.assertTrue(client.cmd("STARTTLS").startswith("220"))
        state = client_hello_byte_by_byte(client.sock, self.inst.tls_ca)
        self.assertEqual(tls_command(client.sock, *state, "EHLO client.test"),
                         "250-mail.example.test")

    def test_renegotiation_ends_session_only(self):
        if shutil.which("openssl") is None:
            self.skipTest("needs openssl")
        tlsproxy = self.inst.service_pids()["tlsproxy"]
        # openssl s_client renegotiates on a line "R" (TLS 1.2 only).
        script = "EHLO client.test\nR\nNOOP\n"
        proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.inst.smtps_port,
             "-tls1_2", "-CAfile", self.inst.tls_ca],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(proc.kill)
        for line in script.splitlines():
            try:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                break
            time.sleep(0.5)
        # A server that ignores the request leaves the client waiting
        # for a ServerHello until the session times out.
        output = proc.communicate(timeout=TIMEOUT)[0].decode(errors="replace")
        self.assertIn("RENEGOTIATING", output)
        self.assertNotIn("250 2.0.0 Ok", output)
        self.assertEqual(self.inst.service_pids()["tlsproxy"], tlsproxy)
        client = self.connect(self.inst.smtps_port)
        self.assertEqual(client.cmd("NOOP"), "250 2.0.0 Ok")

    # ---- AUTH before TLS and identities

    def test_auth_before_starttls(self):
        client = self.connect(starttls=False)
        self.assertNotIn("AUTH", client.cmd("EHLO client.test"))
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "alice", PASSWORD)),
                         "538 5.7.11 Encryption required for requested "
                         "authentication mechanism")
        self.assertEqual(client.cmd("AUTH LOGIN")[:3], "538")
        client = self.connect(self.sub_port, starttls=False)
        self.assertNotIn("AUTH", client.cmd("EHLO client.test"))
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "alice", PASSWORD))[:3],
                         "530")

    def test_authzid_other_user_rejected(self):
        for authzid in ("bob", "bob@" + DOMAIN):
            with self.subTest(authzid=authzid):
                client = self.connect(source="127.0.3.1")
                self.assertEqual(client.cmd("AUTH PLAIN "
                                            + plain(authzid, "alice", PASSWORD))[:3],
                                 "535")
                self.assertEqual(client.cmd("MAIL FROM:<bob@example.test>")[:3], "250")
                self.assertEqual(client.cmd("RCPT TO:<bob@example.test>")[:3], "553")
        client = self.connect()
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("alice@" + DOMAIN, "alice",
                                                           PASSWORD))[:3], "235")

    def test_login_user_with_nul_is_that_user(self):
        # Cyrus LOGIN ends the name at the NUL, so "alice\0bob" with
        # alice's password logs in alice, never bob.
        client = self.connect()
        self.assertEqual(client.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertEqual(client.cmd(b64(b"alice\0bob")), "334 UGFzc3dvcmQ6")
        self.assertEqual(client.cmd(b64(PASSWORD)), "235 2.7.0 Authentication successful")
        self.assertEqual(client.cmd("MAIL FROM:<bob@example.test>")[:3], "250")
        self.assertEqual(client.cmd("RCPT TO:<friend@remote.test>"),
                         "553 5.7.1 <bob@example.test>: Sender address rejected: "
                         "not owned by user alice@example.test")


    def test_oversized_auth_lines(self):
        client = self.connect(source="127.0.3.3")
        huge = b64(b"\0alice\0" + b"x" * 100000)
        self.assertEqual(client.cmd("AUTH PLAIN " + huge), "500 5.5.2 Line too long")
        self.assertEqual(client.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(client.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertEqual(client.cmd(b64(b"u" * 100000)),
                         "500 5.5.6 Authentication exchange line is too long")
        # The exchange ended with the 500: the next line is a command.
        self.assertEqual(client.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "alice", PASSWORD))[:3],
                         "235")

    # ---- throttling

    def test_lockout_spans_ports_and_processes(self):
        ports = [self.inst.smtp_port, self.sub_port, self.inst.smtps_port]
        replies = []
        for i in range(LOCKOUT_FAILURES):
            client = self.connect(ports[i % 3], source="127.0.4.%d" % (i + 1))
            replies.append(client.cmd("AUTH PLAIN " + plain("", "carol", "wrong"))[:3])
        self.assertEqual(replies, ["535"] * LOCKOUT_FAILURES)
        for n, port in enumerate(ports):
            with self.subTest(port=port):
                client = self.connect(port, source="127.0.4.%d" % (50 + n))
                self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "carol", PASSWORD))
                                 [:3], "454")
        # The same name with a NUL after it is the same locked user.
        client = self.connect(source="127.0.4.60")
        client.cmd("AUTH LOGIN")
        client.cmd(b64(b"carol\0x"))
        self.assertEqual(client.cmd(b64(PASSWORD))[:3], "454")
        self.assertIn("lockout: user carol@example.test", self.inst.log_text())

    def test_relay_after_failed_auth(self):
        client = self.connect(source="127.0.5.1")
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "dave", "wrong"))[:3], "535")
        self.assertEqual(client.cmd("MAIL FROM:<x@outside.test>")[:3], "250")
        self.assertEqual(client.cmd("RCPT TO:<friend@remote.test>"),
                         "554 5.7.1 <friend@remote.test>: Relay access denied")
        client = self.connect(self.sub_port, source="127.0.5.1")
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "dave", "wrong"))[:3], "535")
        client.cmd("MAIL FROM:<x@outside.test>")
        self.assertEqual(client.cmd("RCPT TO:<dave@example.test>")[:3], "554")

    # ---- sender spoofing after AUTH

    def test_sender_login_mismatch_variants(self):
        client = self.connect()
        self.assertEqual(client.cmd("AUTH PLAIN " + plain("", "alice", PASSWORD))[:3],
                         "235")
        for sender in ("bob@example.test", "BOB@Example.Test", '"bob"@example.test',
                       "@relay.test:bob@example.test"):
            with self.subTest(sender=sender):
                self.assertEqual(client.cmd("MAIL FROM:<%s>" % sender)[:3], "250")
                self.assertEqual(client.cmd("RCPT TO:<friend@remote.test>")[:3], "553")
                client.cmd("RSET")
        self.assertEqual(client.cmd("MAIL FROM:<bob@example.test.>")[:3], "501")
        client.cmd("MAIL FROM:<ALICE@example.test>")
        self.assertEqual(client.cmd("RCPT TO:<friend@remote.test>")[:3], "250")
        client.cmd("RSET")
        # Without AUTH, nobody may use an address that a login owns.
        client = self.connect(starttls=False)
        client.cmd("MAIL FROM:<Alice@Example.Test>")
        self.assertEqual(client.cmd("RCPT TO:<bob@example.test>"),
                         "553 5.7.1 <Alice@Example.Test>: Sender address rejected: "
                         "not logged in")

    # ---- logs

    def test_zz_password_in_no_log(self):
        forms = [PASSWORD, b64(PASSWORD)]
        forms += [plain("", u, PASSWORD) for u in ("alice", "bob", "carol")]
        text = self.inst.log_text() + self.inst.master_output()
        for form in forms:
            self.assertNotIn(form, text)


if __name__ == "__main__":
    unittest.main()
