"""End-to-end tests of TLS in smtpd and the smtp agent, through tlsproxy.

Real clients (openssl s_client, gnutls-cli, curl, swaks, Python smtplib)
speak STARTTLS on the smtp port and implicit TLS on the wrapper-mode
port of an Instance(tls=True), trusting only the test root CA; each
message must arrive. Then hostile clients, tlsproxy failures, and relay
between two instances over STARTTLS with certificate verification.
"""

import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Instance, free_port  # noqa: E402

HOST = "mail.example.test"
TLSPROXY = os.path.join(BUILD_DIR, "tlsproxy", "tlsproxy")
CLIENT_TIMEOUT = 20


def tls_context(ca_file, minimum=None, maximum=None):
    """A client context that trusts only ca_file and checks the host name."""
    # With cafile given, the system store is not loaded.
    ctx = ssl.create_default_context(cafile=ca_file)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


class LoopbackSMTP(smtplib.SMTP):
    """smtplib.SMTP that connects to 127.0.0.1 but verifies HOST."""

    def _get_socket(self, host, port, timeout):
        return socket.create_connection(("127.0.0.1", port), timeout)


class LoopbackSMTP_SSL(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL that connects to 127.0.0.1 but verifies HOST."""

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)


def message(subject):
    return ("From: <sender@example.org>\r\nTo: <alice@example.test>\r\n"
            "Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))


def read_until_code(stream, code, timeout=CLIENT_TIMEOUT):
    """Read lines from a client's stdout until one starts with "CODE "."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        seen.append(text)
        if text.startswith(code + " "):
            return seen
    raise AssertionError("no %s reply; client output: %r" % (code, seen))


def run_dialogue(argv, greeting):
    """Drive an interactive TLS client through one mail transaction.

    greeting: "220" when the client shows the banner after the handshake
    (implicit TLS), None when the client ran STARTTLS itself. Each step
    waits for its reply, so no command is pipelined. Returns the subject.
    """
    subject = "dialogue %s %d" % (os.path.basename(argv[0]), time.monotonic_ns())
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        if greeting:
            read_until_code(proc.stdout, greeting)
        steps = [
            # VRFY's 252 is a reply no client prints on its own, so it
            # marks where the TLS part of the dialogue starts.
            ("VRFY sync@example.test", "252"),
            ("EHLO client.test", "250"),
            ("MAIL FROM:<sender@example.org>", "250"),
            ("RCPT TO:<alice@example.test>", "250"),
            ("DATA", "354"),
            (message(subject) + ".", "250"),
            ("QUIT", "221"),
        ]
        for command, code in steps:
            proc.stdin.write(command.encode() + b"\r\n")
            proc.stdin.flush()
            read_until_code(proc.stdout, code)
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return subject


class TlsInstanceCase(unittest.TestCase):
    """One TLS instance with an extra port at smtpd_tls_security_level=encrypt."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TLSPROXY):
            raise unittest.SkipTest("tlsproxy is not built")
        cls.encrypt_port = free_port()
        cls.inst = Instance(tls=True, main_cf={"tlsproxy_timeout": "10s"},
                            master_cf_extra=(
                                "127.0.0.1:%d inet n - n - 1 smtpd\n"
                                "  -o syslog_name=postern/encrypt\n"
                                "  -o smtpd_tls_security_level=encrypt\n"
                                % cls.encrypt_port))
        cls.inst.start()
        cls.ca = cls.inst.tls_ca
        cls.delivered = 0

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def expect_delivery(self, subject):
        """Wait for the next message in alice's Maildir; check its subject."""
        type(self).delivered += 1
        messages = self.inst.wait_for_messages("alice", self.delivered)
        found = [m for m in messages if subject.encode() in m]
        self.assertEqual(len(found), 1, "message %r not delivered" % subject)
        return found[0]

    def raw_session(self, port=None):
        sock = socket.create_connection(("127.0.0.1", port or self.inst.smtp_port),
                                        timeout=CLIENT_TIMEOUT)
        self.addCleanup(sock.close)
        return sock


class ClientTest(TlsInstanceCase):
    """Real TLS clients: each sends one message that must arrive."""

    def test_openssl_starttls(self):
        subject = run_dialogue(
            ["openssl", "s_client", "-starttls", "smtp", "-quiet", "-nocommands",
             "-connect", "127.0.0.1:%d" % self.inst.smtp_port,
             "-servername", HOST, "-CAfile", self.ca, "-verify_hostname", HOST,
             "-verify_return_error"], None)
        self.expect_delivery(subject)

    def test_openssl_implicit_tls(self):
        subject = run_dialogue(
            ["openssl", "s_client", "-quiet", "-nocommands",
             "-connect", "127.0.0.1:%d" % self.inst.smtps_port,
             "-servername", HOST, "-CAfile", self.ca, "-verify_hostname", HOST,
             "-verify_return_error"], "220")
        self.expect_delivery(subject)

    def test_gnutls_cli_starttls(self):
        subject = run_dialogue(
            ["gnutls-cli", "--starttls-proto=smtp", "--x509cafile", self.ca,
             "--sni-hostname", HOST, "--verify-hostname", HOST,
             "-p", str(self.inst.smtp_port), "127.0.0.1"], None)
        self.expect_delivery(subject)

    def curl(self, scheme, port, subject):
        path = os.path.join(self.inst.dir, "curl-%s.txt" % scheme)
        with open(path, "w") as f:
            f.write(message(subject).replace("\r\n", "\n"))
        args = ["curl", "-sS", "--crlf", "--cacert", self.ca,
                "--connect-to", "%s:%d:127.0.0.1:%d" % (HOST, port, port),
                "--url", "%s://%s:%d" % (scheme, HOST, port),
                "--mail-from", "sender@example.org",
                "--mail-rcpt", "alice@example.test", "-T", path]
        if scheme == "smtp":
            args.insert(1, "--ssl-reqd")
        result = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_curl_starttls(self):
        self.curl("smtp", self.inst.smtp_port, "curl starttls")
        self.expect_delivery("curl starttls")

    def test_curl_implicit_tls(self):
        self.curl("smtps", self.inst.smtps_port, "curl smtps")
        self.expect_delivery("curl smtps")

    def swaks(self, mode, port, subject):
        result = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % port, mode,
             "--tls-verify", "--tls-ca-path", self.ca, "--tls-sni", HOST,
             "--from", "sender@example.org", "--to", "alice@example.test",
             "--header", "Subject: %s" % subject],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout[-2000:])
        self.assertIn("TLS started", result.stdout)

    def test_swaks_starttls(self):
        self.swaks("--tls", self.inst.smtp_port, "swaks starttls")
        self.expect_delivery("swaks starttls")

    def test_swaks_implicit_tls(self):
        self.swaks("--tlsc", self.inst.smtps_port, "swaks tlsc")
        self.expect_delivery("swaks tlsc")

    def test_smtplib_starttls(self):
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("starttls"))
            code, _ = s.starttls(context=tls_context(self.ca))
            self.assertEqual(code, 220)
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("smtplib starttls"))
        delivered = self.expect_delivery("smtplib starttls")
        self.assertIn(b"with ESMTPS id", delivered)
        self.assertRegex(delivered.decode(),
                         r"\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)\)")
        self.assertRegex(self.inst.log_text(),
                         r"Anonymous TLS connection established from "
                         r"unknown\[127\.0\.0\.1\]: TLSv1\.3 with cipher TLS_\w+")

    def test_smtplib_smtp_ssl(self):
        with LoopbackSMTP_SSL(HOST, self.inst.smtps_port, timeout=CLIENT_TIMEOUT,
                              context=tls_context(self.ca)) as s:
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("smtplib smtp_ssl"))
        self.assertIn(b"with ESMTPS id", self.expect_delivery("smtplib smtp_ssl"))

    def test_smtplib_wrong_name_rejected(self):
        ctx = tls_context(self.ca)
        sock = socket.create_connection(("127.0.0.1", self.inst.smtps_port),
                                        timeout=CLIENT_TIMEOUT)
        with self.assertRaises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(sock, server_hostname="other.example.test")
        sock.close()

    def versioned(self, version, subject):
        ctx = tls_context(self.ca, minimum=version, maximum=version)
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.starttls(context=ctx)
            self.assertEqual(s.sock.version(),
                             "TLSv1.2" if version == ssl.TLSVersion.TLSv1_2
                             else "TLSv1.3")
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message(subject))
        return self.expect_delivery(subject)

    def test_tls12_only_client(self):
        delivered = self.versioned(ssl.TLSVersion.TLSv1_2, "tls 1.2 only")
        self.assertIn(b"(using TLSv1.2 with cipher", delivered)

    def test_tls13_only_client(self):
        delivered = self.versioned(ssl.TLSVersion.TLSv1_3, "tls 1.3 only")
        self.assertIn(b"(using TLSv1.3 with cipher", delivered)


class StarttlsProtocolTest(TlsInstanceCase):
    """The STARTTLS command itself (RFC 3207) and the encrypt level."""

    def read_reply(self, sock):
        data = b""
        while not re.search(rb"(^|\n)\d{3} [^\n]*\n$", data):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def test_starttls_injection_discarded(self):
        sock = self.raw_session()
        self.read_reply(sock)
        sock.sendall(b"EHLO client.test\r\n")
        self.assertIn(b"250-STARTTLS", self.read_reply(sock))

        sock.sendall(b"STARTTLS\r\nRSET\r\n")
        self.assertEqual(self.read_reply(sock), b"220 2.0.0 Ready to start TLS\r\n")
        sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            sock.recv(4096)

        sock.settimeout(CLIENT_TIMEOUT)
        tls = tls_context(self.ca).wrap_socket(sock, server_hostname=HOST)
        tls.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            tls.recv(4096)
        tls.settimeout(CLIENT_TIMEOUT)
        tls.sendall(b"MAIL FROM:<sender@example.org>\r\n")
        # The session went back to its state before EHLO.
        self.assertTrue(self.read_reply(tls).startswith(b"503 5.5.1"))
        tls.sendall(b"EHLO client.test\r\n")
        reply = self.read_reply(tls)
        self.assertTrue(reply.startswith(b"250-mail.example.test"), reply)
        self.assertNotIn(b"STARTTLS", reply)

    def test_second_starttls_503(self):
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.starttls(context=tls_context(self.ca))
            s.ehlo("client.test")
            code, text = s.docmd("STARTTLS")
            self.assertEqual(code, 503)
            self.assertEqual(text, b"5.5.1 Error: TLS already active")

    def test_starttls_with_argument_501(self):
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.ehlo("client.test")
            code, _ = s.docmd("STARTTLS", "now")
            self.assertEqual(code, 501)
            self.assertEqual(s.noop()[0], 250)

    def test_encrypt_level_requires_starttls(self):
        with LoopbackSMTP(HOST, self.encrypt_port, timeout=CLIENT_TIMEOUT) as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("starttls"))
            code, text = s.docmd("MAIL", "FROM:<sender@example.org>")
            self.assertEqual((code, text),
                             (530, b"5.7.0 Must issue a STARTTLS command first"))
            self.assertEqual(s.docmd("RCPT", "TO:<alice@example.test>")[0], 530)
            s.starttls(context=tls_context(self.ca))
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("encrypt level"))
        self.expect_delivery("encrypt level")


class HostileClientTest(TlsInstanceCase):
    """Clients that break the handshake; the service must go on."""

    def assert_service_works(self):
        with LoopbackSMTP_SSL(HOST, self.inst.smtps_port, timeout=CLIENT_TIMEOUT,
                              context=tls_context(self.ca)) as s:
            self.assertEqual(s.noop()[0], 250)
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.starttls(context=tls_context(self.ca))
            self.assertEqual(s.noop()[0], 250)

    def starttls_raw(self):
        sock = self.raw_session()
        sock.recv(4096)
        sock.sendall(b"EHLO client.test\r\n")
        time.sleep(0.1)
        sock.recv(4096)
        sock.sendall(b"STARTTLS\r\n")
        self.assertEqual(sock.recv(4096), b"220 2.0.0 Ready to start TLS\r\n")
        return sock

    def wait_closed(self, sock):
        sock.settimeout(CLIENT_TIMEOUT)
        data = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def test_plaintext_to_wrapper_port(self):
        sock = self.raw_session(self.inst.smtps_port)
        port = sock.getsockname()[1]
        sock.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            sock.recv(4096)  # no banner in plaintext
        sock.sendall(b"EHLO client.test\r\n")
        data = self.wait_closed(sock)
        self.assertNotIn(b"220", data)
        deadline = time.monotonic() + 5
        pattern = "TLS handshake failed from unknown[127.0.0.1]:%d" % port
        while pattern not in self.inst.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(pattern, self.inst.log_text())
        self.assert_service_works()

    def test_random_bytes_instead_of_client_hello(self):
        sock = self.starttls_raw()
        sock.sendall(os.urandom(512))
        self.wait_closed(sock)
        sock = self.raw_session(self.inst.smtps_port)
        sock.sendall(os.urandom(512))
        self.wait_closed(sock)
        self.assert_service_works()

    def test_disconnect_mid_handshake(self):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = tls_context(self.ca).wrap_bio(incoming, outgoing, server_hostname=HOST)
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        sock = self.starttls_raw()
        sock.sendall(hello[:len(hello) // 2])
        sock.close()
        # The whole ClientHello, then a close before the client's Finished.
        sock = self.starttls_raw()
        sock.sendall(hello)
        time.sleep(0.2)
        sock.close()
        self.assert_service_works()

    def test_200_concurrent_sessions(self):
        count = 200
        barrier = threading.Barrier(count, timeout=60)
        errors = []

        def one(i):
            try:
                with LoopbackSMTP_SSL(HOST, self.inst.smtps_port, timeout=60,
                                      context=tls_context(self.ca)) as s:
                    s.ehlo("client%d.test" % i)
                    barrier.wait()  # every session is open at once here
                    s.sendmail("sender@example.org", ["bob@example.test"],
                               message("concurrent %d" % i))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append("%d: %r" % (i, exc))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(errors, [])
        self.assertEqual(len(self.inst.wait_for_messages("bob", count, timeout=60)),
                         count)


class TlsproxyFailureTest(unittest.TestCase):
    """tlsproxy killed or missing; each test has its own instance."""

    def setUp(self):
        if not os.path.exists(TLSPROXY):
            self.skipTest("tlsproxy is not built")

    def test_tlsproxy_killed_during_session(self):
        inst = Instance(tls=True)
        inst.start()
        self.addCleanup(inst.stop)
        old_pid = inst.service_pids()["tlsproxy"][0]
        smtpd_pids = sorted(inst.service_pids()["smtpd"])

        s = LoopbackSMTP(HOST, inst.smtp_port, timeout=CLIENT_TIMEOUT)
        s.starttls(context=tls_context(inst.tls_ca))
        s.ehlo("client.test")
        os.kill(old_pid, signal.SIGKILL)
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            s.noop()
        s.close()

        deadline = time.monotonic() + 15
        new_pids = []
        while time.monotonic() < deadline:
            new_pids = [p for p in inst.service_pids().get("tlsproxy", [])
                        if p != old_pid]
            if new_pids:
                break
            time.sleep(0.1)
        self.assertTrue(new_pids, "master did not restart tlsproxy")
        self.assertEqual(sorted(inst.service_pids()["smtpd"]), smtpd_pids)

        # The restarted tlsproxy serves the next connection.
        deadline = time.monotonic() + 10
        while True:
            try:
                with LoopbackSMTP(HOST, inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
                    self.assertEqual(s.starttls(context=tls_context(inst.tls_ca))[0], 220)
                    s.sendmail("sender@example.org", ["alice@example.test"],
                               message("after tlsproxy restart"))
                break
            except smtplib.SMTPResponseException as exc:
                # 454 while the new process is not yet accepting.
                if exc.smtp_code != 454 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        inst.wait_for_messages("alice", 1)

    def test_tlsproxy_unreachable_454(self):
        inst = Instance(tls=True)
        inst.start()
        self.addCleanup(inst.stop)
        # A missing socket is what a stopped tlsproxy leaves behind.
        os.rename(os.path.join(inst.queue_dir, "private", "tlsproxy"),
                  os.path.join(inst.queue_dir, "private", "tlsproxy.moved"))
        with LoopbackSMTP(HOST, inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.ehlo("client.test")
            code, text = s.docmd("STARTTLS")
            self.assertEqual((code, text),
                             (454, b"4.7.0 TLS not available due to local problem"))
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("plaintext after 454"))
        delivered = inst.wait_for_messages("alice", 1)[0]
        self.assertIn(b"with ESMTP id", delivered)
        self.assertIn("cannot reach tlsproxy", inst.log_text())


class OutboundTest(unittest.TestCase):
    """Instance A relays to instance B, which requires STARTTLS."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TLSPROXY):
            raise unittest.SkipTest("tlsproxy is not built")
        cls.b = Instance(tls=True, main_cf={"smtpd_tls_security_level": "encrypt"})
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()

    def relay_instance(self, ca_file):
        nexthop = "[127.0.0.1]:%d" % self.b.smtp_port
        a = Instance(tls=True, main_cf={
            "virtual_mailbox_domains": "a.example.test",
            "relayhost": nexthop,
            "smtp_tls_security_level": "verify",
            "smtp_tls_CAfile": ca_file or "",
            # B is reached by address, so name the certificate to expect.
            "smtp_tls_policy_maps": "inline:{ %s={verify match=%s} }"
                                    % (nexthop, HOST),
        })
        if ca_file is None:
            a.main_cf["smtp_tls_CAfile"] = a.tls_ca  # A's own, unrelated root
            a.write_main_cf()
        a.start()
        self.addCleanup(a.stop)
        return a

    def submit(self, a, subject):
        """Submit over STARTTLS from 127.0.0.2, inside A's mynetworks."""
        s = smtplib.SMTP(timeout=CLIENT_TIMEOUT, source_address=("127.0.0.2", 0))
        s._host = HOST
        s.connect("127.0.0.1", a.smtp_port)
        s.starttls(context=tls_context(a.tls_ca))
        s.sendmail("sender@example.org", ["alice@example.test"], message(subject))
        s.quit()

    def test_verify_relay_delivered(self):
        a = self.relay_instance(self.b.tls_ca)
        count = len(self.b.messages("alice"))
        self.submit(a, "relayed over tls")
        delivered = [m for m in self.b.wait_for_messages("alice", count + 1)
                     if b"relayed over tls" in m]
        self.assertEqual(len(delivered), 1)
        head = delivered[0].split(b"\n\n", 1)[0].decode()
        received = re.findall(r"^Received: .*?(?=^\S)", head, re.M | re.S)
        self.assertEqual(len(received), 2, head)
        for header in received:
            self.assertRegex(header, r"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)")
            self.assertIn("with ESMTPS id", header)
        self.assertIn("Verified TLS connection established to", a.log_text())

    def test_cached_connection_keeps_tls(self):
        a = self.relay_instance(self.b.tls_ca)
        before = self.b.log_text().count("TLS connection established from")
        count = len(self.b.messages("alice"))
        self.submit(a, "cached first")
        self.b.wait_for_messages("alice", count + 1)
        self.submit(a, "cached second")
        self.b.wait_for_messages("alice", count + 2)
        found = [m for m in self.b.messages("alice") if b"cached second" in m]
        self.assertEqual(len(found), 1)
        first_hop = found[0].split(b"Received: from [127.0.0.1]")[0]
        self.assertIn(b"(using TLSv1.3 with cipher", first_hop)
        # One handshake from A to B: the second message reused the session.
        self.assertEqual(
            self.b.log_text().count("TLS connection established from") - before, 1)

    def test_may_falls_back_to_plaintext(self):
        # B offers only TLS 1.3 and A only TLS 1.2, so the handshake fails.
        b = Instance(tls=True, main_cf={"smtpd_tls_protocols": ">=TLSv1.3"})
        b.start()
        self.addCleanup(b.stop)
        a = Instance(main_cf={
            "virtual_mailbox_domains": "a.example.test",
            "relayhost": "[127.0.0.1]:%d" % b.smtp_port,
            "smtp_tls_security_level": "may",
            "smtp_tls_protocols": "<=TLSv1.2",
        })
        a.start()
        self.addCleanup(a.stop)
        with smtplib.SMTP(timeout=CLIENT_TIMEOUT,
                          source_address=("127.0.0.2", 0)) as s:
            s.connect("127.0.0.1", a.smtp_port)
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("may fallback"))
        delivered = b.wait_for_messages("alice", 1)[0]
        self.assertIn(b"may fallback", delivered)
        self.assertNotIn(b"(using TLS", delivered)
        self.assertIn("retrying without TLS", a.log_text())

    def test_wrong_ca_deferred(self):
        a = self.relay_instance(None)
        self.submit(a, "wrong ca")
        deadline = time.monotonic() + 20
        entries = []
        while time.monotonic() < deadline:
            out = a.postern("queue", "--json").stdout
            entries = [json.loads(line) for line in out.splitlines() if line.strip()]
            if entries and entries[0]["recipients"][0]["delay_reason"]:
                break
            time.sleep(0.2)
        self.assertEqual(len(entries), 1, out)
        reason = entries[0]["recipients"][0]["delay_reason"]
        self.assertIn("server certificate verification failed", reason)
        self.assertEqual(entries[0]["recipients"][0]["status"], "pending")
        self.assertFalse([m for m in self.b.messages("alice") if b"wrong ca" in m])

        # The queue file records how the message arrived at A.
        shown = a.postern("cat", entries[0]["queue_id"]).stdout
        self.assertIn("protocol: ESMTPS", shown)
        self.assertRegex(shown, r"tls: TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)")

if __name__ == "__main__":
    unittest.main()
