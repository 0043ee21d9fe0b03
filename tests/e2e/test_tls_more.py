"""End-to-end tests of TLS features of smtpd through tlsproxy.

Client certificates (smtpd_tls_ask_ccert), session tickets and the
rotation of their key, SNI with tls_server_sni_maps, and a stalled TLS
peer that must not delay other sessions of the same smtpd and tlsproxy
processes. Clients: Python ssl, openssl s_client and gnutls-cli.
"""

import os
import random
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Instance  # noqa: E402

HOST = "mail.example.test"
SNI_HOST = "sni.mail.example.test"
TLSPROXY = os.path.join(BUILD_DIR, "tlsproxy", "tlsproxy")
CLIENT_TIMEOUT = 20

# Extra listeners of these tests take ports from this range.
PORT_RANGE = (58000, 58999)


def range_port():
    """Return a free port on 127.0.0.1 from PORT_RANGE."""
    candidates = list(range(PORT_RANGE[0], PORT_RANGE[1] + 1))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in %d-%d" % PORT_RANGE)


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True,
                          check=True, timeout=30)


def sha256_fingerprint(cert_file):
    """The certificate's SHA-256 fingerprint as "AB:CD:..."."""
    out = openssl("x509", "-in", cert_file, "-noout", "-fingerprint",
                  "-sha256").stdout.decode()
    return out.strip().split("=", 1)[1]


def make_client_certs(certs_dir):
    """Make a client certificate signed by the test intermediate CA and a
    self-signed one. Returns {name: (chain_file, key_file, leaf_file)}."""
    out = {}
    ext = os.path.join(certs_dir, "client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    key = os.path.join(certs_dir, "client.key")
    csr = os.path.join(certs_dir, "client.csr")
    leaf = os.path.join(certs_dir, "client.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/O=Postern Test/CN=client.example.org")
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(certs_dir, "int.pem"),
            "-CAkey", os.path.join(certs_dir, "int.key"), "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", leaf)
    chain = os.path.join(certs_dir, "client-chain.pem")
    with open(chain, "wb") as f:
        for part in (leaf, os.path.join(certs_dir, "int.pem")):
            with open(part, "rb") as src:
                f.write(src.read())
    out["trusted"] = (chain, key, leaf)

    key = os.path.join(certs_dir, "self.key")
    leaf = os.path.join(certs_dir, "self.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", leaf,
            "-days", "2", "-subj", "/CN=self-signed.example.org")
    out["self"] = (leaf, key, leaf)
    return out


def message(subject):
    return ("From: <sender@example.org>\r\nTo: <alice@example.test>\r\n"
            "Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))


def client_context(ca_file, cert=None):
    """A TLS client context that trusts only ca_file; cert is a
    (chain_file, key_file, leaf_file) tuple to present."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


class LoopbackSMTP(smtplib.SMTP):
    """smtplib.SMTP that connects to 127.0.0.1 but verifies its host name."""

    def _get_socket(self, host, port, timeout):
        return socket.create_connection(("127.0.0.1", port), timeout)


class LoopbackSMTP_SSL(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL that connects to 127.0.0.1 but sends its host name
    as SNI and verifies it."""

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)


def wait_for_log(inst, pattern, timeout=10):
    """Wait until the instance's log matches the regular expression;
    return the match."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, inst.log_text())
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def read_reply(sock):
    """Read one complete SMTP reply (all its lines) from sock."""
    data = b""
    while not re.search(rb"(^|\n)\d{3} [^\n]*\n$", data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class TlsMoreCase(unittest.TestCase):
    """One TLS instance shared by the tests of a class.

    main.cf requests client certificates, verifies them with the test root
    CA, and maps SNI_HOST to the second certificate. Extra listeners:
    noccert_port (STARTTLS, -o smtpd_tls_ask_ccert=no).
    """

    main_cf = {}

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TLSPROXY):
            raise unittest.SkipTest("tlsproxy is not built")
        cls.noccert_port = range_port()
        extra = ("127.0.0.1:%d inet n - n - 1 smtpd\n"
                 "  -o syslog_name=postern/noccert -o smtpd_tls_ask_ccert=no\n"
                 % cls.noccert_port)
        cls.inst = Instance(tls=True, master_cf_extra=extra)
        certs = cls.inst.certs_dir
        cls.inst.main_cf.update({
            "smtpd_tls_ask_ccert": "yes",
            "smtpd_tls_CAfile": cls.inst.tls_ca,
            "tls_server_sni_maps": "inline:{ %s=%s }" % (
                SNI_HOST, os.path.join(certs, "sni-chain.pem")),
            "tlsproxy_timeout": "30s",
        })
        cls.inst.main_cf.update(cls.main_cf)
        cls.inst.write_main_cf()
        cls.client_certs = make_client_certs(certs)
        cls.inst.start()
        cls.ca = cls.inst.tls_ca
        cls.delivered = 0

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def expect_delivery(self, subject):
        """Wait for the next message in alice's Maildir; return it."""
        type(self).delivered += 1
        messages = self.inst.wait_for_messages("alice", self.delivered)
        found = [m for m in messages if subject.encode() in m]
        self.assertEqual(len(found), 1, "message %r not delivered" % subject)
        return found[0]


class ClientCertificateTest(TlsMoreCase):
    """smtpd_tls_ask_ccert: the client certificate's fingerprint and
    subject reach smtpd's log; clients without one still deliver."""

    def ccert_log(self, port, trust):
        """The log line about the client certificate of the session from
        client port, with trust "Trusted" or "Untrusted"."""
        return wait_for_log(self.inst, r"%s client certificate from "
                            r"unknown\[127\.0\.0\.1\]:%d: [^\n]*" % (trust, port))

    def test_trusted_certificate_starttls(self):
        chain, key, leaf = self.client_certs["trusted"]
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.starttls(context=client_context(self.ca, (chain, key, leaf)))
            port = s.sock.getsockname()[1]
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("trusted ccert"))
        self.expect_delivery("trusted ccert")
        line = self.ccert_log(port, "Trusted")
        self.assertIsNotNone(line, "no client certificate log line")
        self.assertIn("sha256 fingerprint %s" % sha256_fingerprint(leaf),
                      line.group(0))
        self.assertIn('subject="CN=client.example.org,O=Postern Test"',
                      line.group(0))
        self.assertIn('issuer="CN=Postern Test Intermediate CA,O=Postern Test"',
                      line.group(0))
        self.assertIn("Trusted TLS connection established from "
                      "unknown[127.0.0.1]", self.inst.log_text())

    def test_self_signed_certificate_implicit_tls(self):
        cert = self.client_certs["self"]
        with LoopbackSMTP_SSL(HOST, self.inst.smtps_port, timeout=CLIENT_TIMEOUT,
                              context=client_context(self.ca, cert)) as s:
            port = s.sock.getsockname()[1]
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("self-signed ccert"))
        self.expect_delivery("self-signed ccert")
        line = self.ccert_log(port, "Untrusted")
        self.assertIsNotNone(line, "no client certificate log line")
        self.assertIn("sha256 fingerprint %s" % sha256_fingerprint(cert[2]),
                      line.group(0))
        self.assertIn('subject="CN=self-signed.example.org"', line.group(0))
        self.assertIn("not verified:", line.group(0))

    def test_openssl_client_certificate(self):
        chain, key, leaf = self.client_certs["trusted"]
        proc = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-quiet",
             "-connect", "127.0.0.1:%d" % self.inst.smtp_port,
             "-servername", HOST, "-verify_return_error", "-CAfile", self.ca,
             "-cert", leaf, "-key", key, "-cert_chain",
             os.path.join(self.inst.certs_dir, "int.pem")],
            input=b"EHLO openssl.test\r\nQUIT\r\n", capture_output=True,
            timeout=CLIENT_TIMEOUT)
        self.assertIn(b"221 ", proc.stdout, proc.stderr)
        found = wait_for_log(self.inst, r"Trusted client certificate from "
                             r"unknown\[127\.0\.0\.1\]:\d+: [^\n]*%s"
                             % re.escape(sha256_fingerprint(leaf)))
        self.assertIsNotNone(found)

    def test_no_certificate_still_delivers(self):
        with LoopbackSMTP(HOST, self.inst.smtp_port, timeout=CLIENT_TIMEOUT) as s:
            s.starttls(context=client_context(self.ca))
            port = s.sock.getsockname()[1]
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("no ccert"))
        self.expect_delivery("no ccert")
        self.assertIsNone(self.ccert_log(port, "(Un)?[Tt]rusted"))

    def test_service_override_no_request(self):
        # -o smtpd_tls_ask_ccert=no on one smtpd must reach tlsproxy,
        # whose main.cf says yes: the client is not asked, so it sends none.
        cert = self.client_certs["trusted"]
        with LoopbackSMTP(HOST, self.noccert_port, timeout=CLIENT_TIMEOUT) as s:
            s.starttls(context=client_context(self.ca, cert))
            port = s.sock.getsockname()[1]
            self.assertEqual(s.noop()[0], 250)
        # Only this test uses the port of postern/noccert.
        found = wait_for_log(self.inst, r"postern/noccert/smtpd\[\d+\]: (\w+) "
                             r"TLS connection established from")
        self.assertIsNotNone(found)
        self.assertEqual(found.group(1), "Anonymous")
        self.assertIsNone(self.ccert_log(port, "(Un)?[Tt]rusted"))


class SniTest(TlsMoreCase):
    """tls_server_sni_maps: SNI_HOST gets the second certificate, other
    names and no name get the default one."""

    def peer_subject(self, ssl_sock):
        cert = ssl_sock.getpeercert()
        return dict(x[0] for x in cert["subject"])["commonName"]

    def test_wrapper_port_sni(self):
        for name, expected in ((SNI_HOST, SNI_HOST), (HOST, HOST)):
            # The context checks that the certificate covers name.
            with LoopbackSMTP_SSL(name, self.inst.smtps_port,
                                  timeout=CLIENT_TIMEOUT,
                                  context=client_context(self.ca)) as s:
                self.assertEqual(self.peer_subject(s.sock), expected)
                self.assertEqual(s.noop()[0], 250)

    def test_starttls_sni(self):
        for name, expected in ((SNI_HOST, SNI_HOST), (HOST, HOST)):
            with LoopbackSMTP(name, self.inst.smtp_port,
                              timeout=CLIENT_TIMEOUT) as s:
                s.starttls(context=client_context(self.ca))
                self.assertEqual(self.peer_subject(s.sock), expected)
                s.sendmail("sender@example.org", ["alice@example.test"],
                           message("sni %s" % name))
            self.expect_delivery("sni %s" % name)

    def test_no_sni_gets_default(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.inst.smtps_port),
                                      timeout=CLIENT_TIMEOUT) as raw:
            with ctx.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der).encode()
        subject = openssl("x509", "-noout", "-subject", stdin=pem).stdout
        self.assertIn(b"CN = %s" % HOST.encode(), subject)

    def openssl_subject(self, args):
        proc = subprocess.run(
            ["openssl", "s_client", *args, "-CAfile", self.ca,
             "-verify_return_error"],
            input=b"QUIT\r\n", capture_output=True, timeout=CLIENT_TIMEOUT)
        found = re.search(rb"subject=.*CN ?= ?([\w.-]+)", proc.stdout)
        self.assertIsNotNone(found, proc.stdout + proc.stderr)
        return found.group(1).decode()

    def test_openssl_sni(self):
        wrapper = ["-connect", "127.0.0.1:%d" % self.inst.smtps_port]
        starttls = ["-starttls", "smtp", "-connect",
                    "127.0.0.1:%d" % self.inst.smtp_port]
        for args in (wrapper, starttls):
            self.assertEqual(self.openssl_subject(
                args + ["-servername", SNI_HOST, "-verify_hostname", SNI_HOST]),
                SNI_HOST)
            self.assertEqual(self.openssl_subject(
                args + ["-servername", HOST, "-verify_hostname", HOST]), HOST)
            self.assertEqual(self.openssl_subject(args + ["-noservername"]),
                             HOST)

    def test_gnutls_cli_sni_starttls(self):
        proc = subprocess.run(
            ["gnutls-cli", "--starttls-proto=smtp", "--x509cafile", self.ca,
             "--sni-hostname", SNI_HOST, "--verify-hostname", SNI_HOST,
             "-p", str(self.inst.smtp_port), "127.0.0.1"],
            input=b"QUIT\r\n", capture_output=True, timeout=CLIENT_TIMEOUT)
        out = proc.stdout + proc.stderr
        self.assertIn(b"Handshake was completed", out)
        self.assertIn(b"CN=%s" % SNI_HOST.encode(), out)
        self.assertIn(b"221 ", proc.stdout)


class StalledPeerTest(TlsMoreCase):
    """A peer that stalls in its handshake must not delay another session
    on the same smtpd process and the only tlsproxy process."""

    # tlsproxy_timeout is 30s here, so a session that waits for a
    # stalled handshake would take that long.
    MAX_SESSION_SEC = 5.0

    def client_hello(self):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client_context(self.ca).wrap_bio(incoming, outgoing,
                                               server_hostname=HOST)
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        return outgoing.read()

    def open_raw(self, port):
        sock = socket.create_connection(("127.0.0.1", port),
                                        timeout=CLIENT_TIMEOUT)
        self.addCleanup(sock.close)
        return sock

    def stalled_starttls(self, hello):
        sock = self.open_raw(self.inst.smtp_port)
        read_reply(sock)
        sock.sendall(b"EHLO stall.test\r\n")
        read_reply(sock)
        sock.sendall(b"STARTTLS\r\n")
        self.assertEqual(read_reply(sock), b"220 2.0.0 Ready to start TLS\r\n")
        sock.sendall(hello[:len(hello) // 2])
        return sock

    def assert_still_open(self, sock):
        sock.setblocking(False)
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        self.fail("the stalled connection got %r before tlsproxy_timeout" % data)

    def timed(self, func):
        start = time.monotonic()
        func()
        return time.monotonic() - start

    def test_stalled_handshakes_do_not_delay_others(self):
        pids = self.inst.service_pids()
        self.assertEqual(len(pids["tlsproxy"]), 1)
        hello = self.client_hello()
        stalled = [
            self.open_raw(self.inst.smtps_port),           # sends nothing
            self.open_raw(self.inst.smtps_port),           # half a ClientHello
            self.stalled_starttls(hello),                  # same, after STARTTLS
        ]
        stalled[1].sendall(hello[:len(hello) // 2])
        time.sleep(0.3)  # smtpd has handed all three to tlsproxy

        def starttls_session():
            with LoopbackSMTP(HOST, self.inst.smtp_port,
                              timeout=CLIENT_TIMEOUT) as s:
                s.starttls(context=client_context(self.ca))
                s.sendmail("sender@example.org", ["alice@example.test"],
                           message("beside a stalled peer starttls"))

        def implicit_session():
            with LoopbackSMTP_SSL(HOST, self.inst.smtps_port,
                                  timeout=CLIENT_TIMEOUT,
                                  context=client_context(self.ca)) as s:
                s.sendmail("sender@example.org", ["alice@example.test"],
                           message("beside a stalled peer implicit"))

        self.assertLess(self.timed(starttls_session), self.MAX_SESSION_SEC)
        self.assertLess(self.timed(implicit_session), self.MAX_SESSION_SEC)
        self.expect_delivery("beside a stalled peer starttls")
        self.expect_delivery("beside a stalled peer implicit")
        for sock in stalled:
            self.assert_still_open(sock)

        # The same processes served everything.
        after = self.inst.service_pids()
        self.assertEqual(after["tlsproxy"], pids["tlsproxy"])
        self.assertEqual(sorted(after["smtpd"]), sorted(pids["smtpd"]))


class SessionTicketTest(TlsMoreCase):
    """Session tickets on the wrapper-mode port, with a short
    smtpd_tls_session_cache_timeout so that tickets expire and the
    ticket key rotates within the test."""

    LIFETIME = 3
    # GnuTLS 3.7 derives a new ticket key when the wall-clock time enters
    # a new multiple of 3 x the ticket lifetime.
    ROTATION = 3 * LIFETIME
    main_cf = {"smtpd_tls_session_cache_timeout": "%ds" % LIFETIME}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A ticket resumes only with the context that got it.
        cls.ticket_context = client_context(cls.ca)
        cls.ticket_context.minimum_version = ssl.TLSVersion.TLSv1_3

    def session(self, ticket=None):
        """One TLS 1.3 session on the wrapper-mode port; returns
        (resumed, new ticket)."""
        ctx = self.ticket_context
        with socket.create_connection(("127.0.0.1", self.inst.smtps_port),
                                      timeout=CLIENT_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOST,
                                 session=ticket) as tls:
                # TLS 1.3 tickets arrive after the handshake, with the banner.
                self.assertTrue(read_reply(tls).startswith(b"220 "))
                tls.sendall(b"QUIT\r\n")
                self.assertTrue(read_reply(tls).startswith(b"221 "))
                return tls.session_reused, tls.session

    def wait_for_period_offset(self, low, high):
        """Sleep until time() modulo ROTATION lies in [low, high)."""
        while not low <= time.time() % self.ROTATION < high:
            time.sleep(0.02)

    def ticket_key_name(self):
        """The first 16 bytes of a ticket that openssl s_client gets from
        the wrapper-mode port: the name of the key that encrypted it."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "session.pem")
            subprocess.run(
                ["openssl", "s_client", "-connect",
                 "127.0.0.1:%d" % self.inst.smtps_port, "-servername", HOST,
                 "-CAfile", self.ca, "-tls1_3", "-quiet", "-sess_out", path],
                input=b"QUIT\r\n", capture_output=True, timeout=CLIENT_TIMEOUT,
                check=True)
            text = openssl("sess_id", "-in", path, "-noout",
                           "-text").stdout.decode()
        found = re.search(r"TLS session ticket:\s*\n\s*0000 - ([0-9a-f -]+)",
                          text)
        self.assertIsNotNone(found, text)
        return found.group(1).replace("-", " ").split()[:16]

    def test_fresh_ticket_resumes(self):
        resumed, ticket = self.session()
        self.assertFalse(resumed)
        resumed, _ = self.session(ticket)
        self.assertTrue(resumed)
        self.assertIsNotNone(wait_for_log(
            self.inst, r"Anonymous TLS connection established from "
            r"unknown\[127\.0\.0\.1\]: TLSv1\.3 [^\n]* \(resumed\)"))

    def test_expired_ticket_full_handshake(self):
        _, ticket = self.session()
        # Both GnuTLS and the OpenSSL client count the age in whole
        # seconds, so a ticket is rejected once it is LIFETIME + 1 s old.
        time.sleep(self.LIFETIME + 1.5)
        resumed, fresh = self.session(ticket)
        self.assertFalse(resumed)
        resumed, _ = self.session(fresh)
        self.assertTrue(resumed)

    def test_ticket_key_rotates(self):
        # Late in a rotation period: two tickets share the key name.
        self.wait_for_period_offset(self.ROTATION - 1.5, self.ROTATION - 1.0)
        first = self.ticket_key_name()
        self.assertEqual(self.ticket_key_name(), first)
        _, ticket = self.session()

        # Early in the next period, about 1.5 s later: a new key.
        self.wait_for_period_offset(0.2, 0.6)
        self.assertNotEqual(self.ticket_key_name(), first)
        # The ticket from the previous period has not expired, and GnuTLS
        # still decrypts it with the previous key.
        resumed, _ = self.session(ticket)
        self.assertTrue(resumed)


if __name__ == "__main__":
    unittest.main()
