"""TLS configuration edges: HELP, a missing certificate, SNI checks.

- HELP lists STARTTLS only where EHLO offers it.
- A service that asks for TLS without a certificate: master and smtpd
  log a warning, STARTTLS gets 454, plaintext mail still arrives.
- The smtp agent sends no SNI to an IP-literal next hop (RFC 6066
  section 3) and sends the host name otherwise.
- postern tls-check checks the certificates of tls_server_sni_maps.
"""

import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, TOP_DIR, Instance  # noqa: E402

TLSPROXY = os.path.join(BUILD_DIR, "tlsproxy", "tlsproxy")
MAKE_CERTS = os.path.join(TOP_DIR, "scripts", "make-test-certs.sh")
HOST = "mail.example.test"


def message(subject):
    return ("From: <sender@example.org>\r\nTo: <alice@example.test>\r\n"
            "Subject: %s\r\n\r\nbody\r\n" % subject)


class HelpTest(unittest.TestCase):
    def help_reply(self, **main_cf):
        inst = Instance(main_cf=main_cf)
        inst.start()
        self.addCleanup(inst.stop)
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
            return s.docmd("HELP")

    def test_help_lists_starttls(self):
        if not os.path.exists(TLSPROXY):
            self.skipTest("tlsproxy is not built")
        inst = Instance(tls=True)
        inst.start()
        self.addCleanup(inst.stop)
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
            code, text = s.docmd("HELP")
        self.assertEqual(code, 214)
        self.assertIn(b" STARTTLS", text)

    def test_help_without_tls(self):
        code, text = self.help_reply(smtpd_tls_security_level="none")
        self.assertEqual(code, 214)
        self.assertNotIn(b"STARTTLS", text)


class NoCertificateTest(unittest.TestCase):
    def test_tls_without_certificate_gets_454(self):
        inst = Instance(main_cf={"smtpd_tls_security_level": "may"},
                        master_cf_extra=(
                            "127.0.0.1:0 inet n - n - 1 smtpd\n"
                            "  -o syslog_name=postern/smtps\n"
                            "  -o smtpd_tls_wrappermode=yes\n"))
        inst.start()
        self.addCleanup(inst.stop)
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            code, text = s.docmd("STARTTLS")
            self.assertEqual(code, 454)
            self.assertEqual(text, b"4.7.0 TLS not available due to local problem")
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("plaintext without certificate"))
        self.assertIn(b"plaintext without certificate",
                      inst.wait_for_messages("alice", 1)[0])
        log = inst.log_text() + inst.master_output()
        self.assertIn("but no server certificate is configured", log)
        self.assertRegex(log, r"service 127\.0\.0\.1:0 \(master\.cf line \d+\) "
                              r"has smtpd_tls_wrappermode = yes, but no server "
                              r"certificate is configured")


class SniRecordingServer:
    """An SMTP server on 127.0.0.1 that offers STARTTLS and records the
    SNI name of each handshake (None when the client sent none)."""

    def __init__(self, certs):
        self.names = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(certs, "server-chain.pem"))
        self.ctx.sni_callback = lambda sslobj, name, ctx: self.names.append(name)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                self.session(conn)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def session(self, conn):
        conn.settimeout(10)
        f = conn.makefile("rb")
        conn.sendall(b"220 sink.test ESMTP\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                extra = b"250 STARTTLS\r\n" if not isinstance(conn, ssl.SSLSocket) \
                    else b"250 8BITMIME\r\n"
                conn.sendall(b"250-sink.test\r\n" + extra)
            elif line.upper().startswith(b"STARTTLS"):
                conn.sendall(b"220 go ahead\r\n")
                conn = self.ctx.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                while f.readline() not in (b".\r\n", b""):
                    pass
                conn.sendall(b"250 ok\r\n")
                self.received.set()
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def close(self):
        self.listener.close()


class SmtpSniTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(TLSPROXY):
            self.skipTest("tlsproxy is not built")

    def relay_through(self, nexthop_host):
        certs = os.path.join(self.tmp_certs(), "certs")
        server = SniRecordingServer(certs)
        self.addCleanup(server.close)
        a = Instance(tls=True, main_cf={
            "virtual_mailbox_domains": "a.example.test",
            "relayhost": "[%s]:%d" % (nexthop_host, server.port),
            "smtp_tls_security_level": "encrypt",
        })
        a.start()
        self.addCleanup(a.stop)
        with smtplib.SMTP(timeout=10, source_address=("127.0.0.2", 0)) as s:
            s.connect("127.0.0.1", a.smtp_port)
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("sni"))
        self.assertTrue(server.received.wait(20), a.log_text()[-2000:])
        self.assertIn("TLS connection established to", a.log_text())
        return server.names

    def tmp_certs(self):
        path = os.path.join("/tmp", "postern-sni-%d-%d" % (os.getpid(), time.monotonic_ns()))
        subprocess.run([MAKE_CERTS, os.path.join(path, "certs"), HOST],
                       check=True, capture_output=True)
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def test_ip_literal_sends_no_sni(self):
        self.assertEqual(self.relay_through("127.0.0.1"), [None])

    def test_host_name_sends_sni(self):
        self.assertEqual(self.relay_through("localhost"), ["localhost"])


class TlsCheckSniTest(unittest.TestCase):
    def test_good_sni_chain_passes(self):
        inst = Instance(tls=True)
        self.addCleanup(shutil.rmtree, inst.dir, True)
        chain = os.path.join(inst.certs_dir, "sni-chain.pem")
        inst.main_cf["smtpd_tls_CAfile"] = inst.tls_ca
        inst.main_cf["tls_server_sni_maps"] = "inline:{ sni.mail.example.test=%s }" % chain
        inst.write_main_cf()
        result = inst.postern("tls-check")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("tls_server_sni_maps sni.mail.example.test", result.stdout)
        self.assertIn("the leaf names cover the SNI name sni.mail.example.test",
                      result.stdout)

    def test_sni_missing_intermediate(self):
        inst = Instance(tls=True)
        self.addCleanup(shutil.rmtree, inst.dir, True)
        chain = os.path.join(inst.certs_dir, "sni-short.pem")
        with open(chain, "wb") as out:
            for name in ("sni.key", "sni.pem"):
                with open(os.path.join(inst.certs_dir, name), "rb") as f:
                    out.write(f.read())
        os.chmod(chain, 0o600)
        inst.main_cf["smtpd_tls_CAfile"] = inst.tls_ca
        inst.main_cf["tls_server_sni_maps"] = "inline:{ sni.mail.example.test=%s }" % chain
        inst.write_main_cf()
        result = inst.postern("tls-check")
        self.assertEqual(result.returncode, 1)
        self.assertIn("tls_server_sni_maps sni.mail.example.test", result.stderr)
        self.assertIn("does not verify up to a trusted root", result.stderr)

    def test_sni_name_not_covered(self):
        inst = Instance(tls=True)
        self.addCleanup(shutil.rmtree, inst.dir, True)
        chain = os.path.join(inst.certs_dir, "sni-chain.pem")
        inst.main_cf["smtpd_tls_CAfile"] = inst.tls_ca
        inst.main_cf["tls_server_sni_maps"] = "inline:{ other.example.org=%s }" % chain
        inst.write_main_cf()
        result = inst.postern("tls-check")
        self.assertEqual(result.returncode, 1)
        self.assertIn("the leaf names do not cover the SNI name other.example.org",
                      result.stderr)


class PrivilegeTest(unittest.TestCase):
    def test_tlsproxy_drops_root_after_keys(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to own the key files")
        if not os.path.exists(TLSPROXY):
            self.skipTest("tlsproxy is not built")
        inst = Instance(tls=True)
        for name in os.listdir(inst.certs_dir):
            if name.endswith("chain.pem") or name.endswith(".key"):
                path = os.path.join(inst.certs_dir, name)
                os.chown(path, 0, 0)
                os.chmod(path, 0o600)
        inst.start()
        self.addCleanup(inst.stop)
        pid = inst.service_pids()["tlsproxy"][0]
        with open("/proc/%d/status" % pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(inst.mail_uid)})
        self.assertNotEqual(inst.mail_uid, 0)
        ctx = ssl.create_default_context(cafile=inst.tls_ca)
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
            s._host = HOST
            self.assertEqual(s.starttls(context=ctx)[0], 220)
            self.assertEqual(s.noop()[0], 250)


if __name__ == "__main__":
    unittest.main()
