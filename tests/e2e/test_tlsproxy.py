"""End-to-end tests of tlsproxy, driven directly without smtpd.

Each test plays the caller: it accepts a TCP connection from a real TLS
client (Python ssl, openssl s_client, gnutls-cli), passes the accepted
socket to private/tlsproxy with the request record of
lib/tlsproxy_client.h, reads the reply and checks that plaintext
round-trips. The certificates come from scripts/make-test-certs.sh.
"""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, POSTERN_CLI, TOP_DIR, Instance  # noqa: E402

TLSPROXY = os.path.join(BUILD_DIR, "tlsproxy", "tlsproxy")
MAKE_CERTS = os.path.join(TOP_DIR, "scripts", "make-test-certs.sh")
HOST = "mail.example.test"
SNI_HOST = "sni.example.test"


def encode_record(attrs):
    """The lib/attr.h wire form of [(name, value), ...]."""
    out = b""
    for name, value in attrs:
        value = value.encode() if isinstance(value, str) else value
        value = (value.replace(b"%", b"%25").replace(b"\n", b"%0A")
                 .replace(b"\r", b"%0D").replace(b"\0", b"%00"))
        out += name.encode() + b"=" + value + b"\n"
    return out + b"\n"


def decode_record(data):
    """{name: value} of one record (without its final empty line)."""
    result = {}
    for line in data.split(b"\n"):
        if not line:
            continue
        name, _, value = line.partition(b"=")
        text = bytearray()
        i = 0
        while i < len(value):
            if value[i:i + 1] == b"%":
                text.append(int(value[i + 1:i + 3], 16))
                i += 3
            else:
                text.append(value[i])
                i += 1
        result[name.decode()] = text.decode("utf-8", "replace")
    return result


def make_certs(directory, host=HOST, sni=SNI_HOST):
    subprocess.run([MAKE_CERTS, directory, host, sni], check=True,
                   capture_output=True)


class Caller:
    """One request to tlsproxy: the UNIX connection after the request."""

    def __init__(self, inst, net_sock, attrs):
        path = os.path.join(inst.queue_dir, "private", "tlsproxy")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A blocking connect waits while the listen queue is full, where a
        # socket with a timeout would fail with EAGAIN.
        self.sock.connect(path)
        self.sock.settimeout(20)
        socket.send_fds(self.sock, [encode_record(attrs)], [net_sock.fileno()])
        net_sock.close()
        self.pending = b""
        self.reply = None

    def read_reply(self):
        """Read the reply record; bytes after it stay in self.pending."""
        data = b""
        while b"\n\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("tlsproxy closed without a reply: %r" % data)
            data += chunk
        record, _, self.pending = data.partition(b"\n\n")
        self.reply = decode_record(record)
        return self.reply

    def recv_exactly(self, count):
        data, self.pending = self.pending, b""
        while len(data) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def close(self):
        self.sock.close()


class TlsproxyCase(unittest.TestCase):
    """One instance with tlsproxy and test certificates for all tests."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TLSPROXY):
            raise unittest.SkipTest("tlsproxy is not built")
        cls.inst = Instance()
        cls.certs = os.path.join(cls.inst.dir, "certs")
        make_certs(cls.certs)
        cls.ca = os.path.join(cls.certs, "ca.pem")
        cls.inst.main_cf.update({
            "smtpd_tls_chain_files": "%s, %s" % (
                os.path.join(cls.certs, "server-chain.pem"),
                os.path.join(cls.certs, "server-ec-chain.pem")),
            "tls_server_sni_maps": "inline:{ %s=%s }" % (
                SNI_HOST, os.path.join(cls.certs, "sni-chain.pem")),
            "smtpd_tls_CAfile": cls.ca,
            "tlsproxy_timeout": "5s",
        })
        cls.inst.write_main_cf()
        cls.inst.start()
        cls.inst.wait_for_service("tlsproxy")
        cls.sock_path = os.path.join(cls.inst.queue_dir, "private", "tlsproxy")
        deadline = time.monotonic() + 10
        while not os.path.exists(cls.sock_path) and time.monotonic() < deadline:
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def setUp(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def tearDown(self):
        self.listener.close()

    def client_context(self, cafile=None, **kwargs):
        ctx = ssl.create_default_context(cafile=cafile or self.ca)
        for name, value in kwargs.items():
            setattr(ctx, name, value)
        return ctx

    def start_client(self, ctx, server_hostname=HOST, payload=b"hello\r\n",
                     answer_len=7):
        """Run a TLS client in a thread; returns (thread, result dict)."""
        result = {}

        def run():
            try:
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=20)
                with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    result["version"] = tls.version()
                    result["cert"] = tls.getpeercert()
                    tls.sendall(payload)
                    data = b""
                    while len(data) < answer_len:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    result["answer"] = data
            except Exception as exc:  # reported by the test
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result

    def pass_server(self, peer=None):
        """Accept one connection and hand it to tlsproxy as role=server."""
        self.listener.settimeout(20)
        conn, addr = self.listener.accept()
        peer = peer or "client.test[%s]:%d" % addr
        return Caller(self.inst, conn, [("role", "server"), ("service", "test"),
                                        ("peer", peer)])

    def round_trip(self, ctx, server_hostname=HOST):
        thread, result = self.start_client(ctx, server_hostname)
        caller = self.pass_server()
        reply = caller.read_reply()
        if reply.get("status") == "ok":
            self.assertEqual(caller.recv_exactly(7), b"hello\r\n")
            caller.sock.sendall(b"world\r\n")
        thread.join(20)
        caller.close()
        return reply, result


class ServerRoleTest(TlsproxyCase):

    def test_tls13_round_trip_verifies_chain(self):
        reply, result = self.round_trip(self.client_context())
        self.assertNotIn("error", result)
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["protocol"], "TLSv1.3")
        self.assertEqual(result["version"], "TLSv1.3")
        self.assertTrue(reply["cipher"].startswith("TLS_"), reply["cipher"])
        self.assertIn(reply["cipher_bits"], ("128", "256"))
        self.assertEqual(reply["sni"], HOST)
        self.assertEqual(result["answer"], b"world\r\n")

    def test_tls12_only_client(self):
        ctx = self.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        reply, result = self.round_trip(ctx)
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["protocol"], "TLSv1.2")
        self.assertEqual(result["version"], "TLSv1.2")
        self.assertEqual(result["answer"], b"world\r\n")

    def test_ecdsa_certificate_for_ecdsa_client(self):
        ctx = self.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        reply, result = self.round_trip(ctx)
        self.assertEqual(reply["status"], "ok")
        self.assertIn("ECDSA", reply["cipher"])
        self.assertEqual(result["answer"], b"world\r\n")

    def test_sni_selects_second_certificate(self):
        reply, result = self.round_trip(self.client_context(),
                                        server_hostname=SNI_HOST)
        self.assertNotIn("error", result)
        self.assertEqual(reply["sni"], SNI_HOST)
        subject = dict(item[0] for item in result["cert"]["subject"])
        self.assertEqual(subject["commonName"], SNI_HOST)

    def test_untrusted_root_fails_in_client(self):
        other = os.path.join(self.inst.dir, "other-ca")
        make_certs(other)
        thread, result = self.start_client(
            self.client_context(cafile=os.path.join(other, "ca.pem")))
        caller = self.pass_server()
        reply = caller.read_reply()
        thread.join(20)
        caller.close()
        self.assertIsInstance(result.get("error"), ssl.SSLCertVerificationError)
        self.assertEqual(reply["status"], "fail")

    def test_openssl_tls13_only(self):
        proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
             "-tls1_3", "-CAfile", self.ca, "-servername", HOST,
             "-verify_hostname", HOST, "-verify_return_error", "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        caller = self.pass_server()
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["protocol"], "TLSv1.3")
        caller.sock.sendall(b"from-server\n")
        proc.stdin.write(b"from-client\n")
        proc.stdin.flush()
        self.assertEqual(caller.recv_exactly(12), b"from-client\n")
        caller.close()
        out, err = proc.communicate(timeout=20)
        self.assertIn(b"from-server\n", out)
        self.assertEqual(proc.returncode, 0, err)

    def test_gnutls_cli_tls12_only(self):
        proc = subprocess.Popen(
            ["gnutls-cli", "-p", str(self.port), "--x509cafile", self.ca,
             "--verify-hostname", HOST, "--sni-hostname", HOST,
             "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        caller = self.pass_server()
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["protocol"], "TLSv1.2")
        caller.sock.sendall(b"from-server\n")
        proc.stdin.write(b"from-client\n")
        proc.stdin.flush()
        self.assertEqual(caller.recv_exactly(12), b"from-client\n")
        caller.close()
        out, err = proc.communicate(timeout=20)
        self.assertIn(b"from-server\n", out)
        self.assertIn(b"Handshake was completed", out + err)

    def test_random_bytes_give_fail_and_log(self):
        client = socket.create_connection(("127.0.0.1", self.port))
        client.sendall(os.urandom(300))
        client.shutdown(socket.SHUT_WR)
        peer = "random.test[127.0.0.1]:%d" % client.getsockname()[1]
        caller = self.pass_server(peer)
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "fail")
        self.assertTrue(reply["reason"])
        self.assertEqual(caller.sock.recv(10), b"")
        caller.close()
        client.close()
        deadline = time.monotonic() + 5
        while peer not in self.inst.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(peer + ": service=test role=server: TLS handshake failed",
                      self.inst.log_text())

    def test_disconnect_mid_handshake(self):
        client = socket.create_connection(("127.0.0.1", self.port))
        # The start of a TLS 1.0 record header and ClientHello, then EOF.
        client.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        client.close()
        caller = self.pass_server()
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "fail")
        caller.close()
        # The process still serves the next session.
        reply, result = self.round_trip(self.client_context())
        self.assertEqual(reply["status"], "ok")

    def test_silent_client_times_out(self):
        client = socket.create_connection(("127.0.0.1", self.port))
        caller = self.pass_server()
        started = time.monotonic()
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "fail")
        self.assertIn("timed out", reply["reason"])
        self.assertLess(time.monotonic() - started, 10)
        caller.close()
        client.close()

    def test_missing_descriptor_is_rejected(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.sock_path)
        sock.sendall(encode_record([("role", "server"), ("peer", "x[1.2.3.4]:1")]))
        data = b""
        while b"\n\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        reply = decode_record(data.partition(b"\n\n")[0])
        self.assertEqual(reply["status"], "fail")
        self.assertIn("no network socket", reply["reason"])

    def test_large_transfer_both_ways(self):
        size = 4 * 1024 * 1024
        blob = os.urandom(size)
        thread, result = self.start_client(self.client_context(), payload=blob,
                                           answer_len=size)
        caller = self.pass_server()
        self.assertEqual(caller.read_reply()["status"], "ok")
        echo = threading.Thread(target=lambda: caller.sock.sendall(blob), daemon=True)
        echo.start()
        got = caller.recv_exactly(size)
        echo.join(30)
        thread.join(30)
        caller.close()
        self.assertEqual(got, blob)
        self.assertEqual(result.get("answer"), blob)

    def test_peer_close_reaches_caller(self):
        thread, result = self.start_client(self.client_context())
        caller = self.pass_server()
        self.assertEqual(caller.read_reply()["status"], "ok")
        self.assertEqual(caller.recv_exactly(7), b"hello\r\n")
        caller.sock.sendall(b"world\r\n")
        thread.join(20)
        self.assertEqual(result.get("answer"), b"world\r\n")
        # The client closed; the caller reads end of file.
        caller.sock.settimeout(10)
        self.assertEqual(caller.sock.recv(10), b"")
        caller.close()

    def test_session_ticket_resumption(self):
        ctx = self.client_context()
        sessions = []
        for attempt in range(2):
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            caller = self.pass_server()
            with ctx.wrap_socket(raw, server_hostname=HOST,
                                 session=sessions[-1] if sessions else None) as tls:
                reply = caller.read_reply()
                caller.sock.sendall(b"ping\n")
                self.assertEqual(tls.recv(5), b"ping\n")
                sessions.append(tls.session)
                resumed = tls.session_reused
            caller.close()
            self.assertEqual(reply["resumed"], "yes" if attempt else "no")
            self.assertEqual(resumed, bool(attempt))

    def test_two_hundred_concurrent_handshakes(self):
        count = 200
        self.listener.listen(count)
        ctx = self.client_context()
        results = [None] * count

        def client(i):
            try:
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
                    tls.sendall(b"%08d" % i)
                    results[i] = tls.recv(8)
            except Exception as exc:
                results[i] = exc

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(count)]
        for t in threads:
            t.start()
        callers = [self.pass_server() for _ in range(count)]
        for caller in callers:
            self.assertEqual(caller.read_reply()["status"], "ok")
        for caller in callers:
            caller.sock.sendall(caller.recv_exactly(8))
        for t in threads:
            t.join(60)
        for caller in callers:
            caller.close()
        self.assertEqual([r for r in results if not isinstance(r, bytes)], [])
        self.assertEqual(sorted(results), [b"%08d" % i for i in range(count)])


class ClientRoleTest(TlsproxyCase):
    """tlsproxy as the TLS client of a Python ssl server."""

    def serve_tls(self, certfile, greeting=b"220 ready\r\n"):
        """Serve one TLS connection on self.listener in a thread."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile)
        result = {}

        def run():
            try:
                conn, _ = self.listener.accept()
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    result["sni"] = getattr(tls, "server_hostname", None)
                    tls.sendall(greeting)
                    result["got"] = tls.recv(100)
            except Exception as exc:
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result

    def pass_client(self, **attrs):
        net = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        record = [("role", "client"), ("service", "smtp"),
                  ("peer", "mx.test[127.0.0.1]:%d" % self.port)]
        record += list(attrs.items())
        return Caller(self.inst, net, record)

    def test_verify_with_root_ca(self):
        thread, result = self.serve_tls(os.path.join(self.certs, "server-chain.pem"))
        caller = self.pass_client(server_name=HOST, security_level="verify",
                                  ca_file=self.ca)
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(reply["verified"], "yes")
        self.assertIn("CN=" + HOST, reply["peer_subject"])
        self.assertEqual(len(reply["peer_fingerprint"]), 95)
        self.assertEqual(caller.recv_exactly(11), b"220 ready\r\n")
        caller.sock.sendall(b"EHLO x\r\n")
        thread.join(20)
        caller.close()
        self.assertEqual(result["got"], b"EHLO x\r\n")

    def test_verify_with_wrong_ca_fails(self):
        other = os.path.join(self.inst.dir, "wrong-ca")
        make_certs(other)
        thread, _ = self.serve_tls(os.path.join(self.certs, "server-chain.pem"))
        caller = self.pass_client(server_name=HOST, security_level="verify",
                                  ca_file=os.path.join(other, "ca.pem"))
        reply = caller.read_reply()
        caller.close()
        thread.join(20)
        self.assertEqual(reply["status"], "fail")
        self.assertIn("verification failed", reply["reason"])

    def test_verify_wrong_name_fails(self):
        thread, _ = self.serve_tls(os.path.join(self.certs, "server-chain.pem"))
        caller = self.pass_client(server_name="other.example.test",
                                  security_level="verify", ca_file=self.ca)
        reply = caller.read_reply()
        caller.close()
        thread.join(20)
        self.assertEqual(reply["status"], "fail")
        self.assertIn("does not match", reply["reason"])

    def test_encrypt_reports_unverified(self):
        other = os.path.join(self.inst.dir, "enc-ca")
        make_certs(other)
        thread, result = self.serve_tls(os.path.join(self.certs, "server-chain.pem"))
        caller = self.pass_client(server_name=HOST, security_level="encrypt",
                                  ca_file=os.path.join(other, "ca.pem"))
        reply = caller.read_reply()
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["verified"], "no")
        self.assertTrue(reply["verify_error"])
        self.assertEqual(caller.recv_exactly(11), b"220 ready\r\n")
        caller.sock.sendall(b"QUIT\r\n")
        thread.join(20)
        caller.close()
        self.assertEqual(result["got"], b"QUIT\r\n")


class ReloadTest(TlsproxyCase):

    def test_reload_keeps_session_and_loads_new_certificate(self):
        thread, result = self.start_client(self.client_context(), answer_len=7)
        caller = self.pass_server()
        first = caller.read_reply()
        self.assertEqual(first["status"], "ok")
        old_pids = set(self.inst.service_pids()["tlsproxy"])

        renewed = os.path.join(self.inst.dir, "renewed")
        shutil.copytree(self.certs, renewed)
        # A new leaf from the same intermediate: make-test-certs makes a
        # whole new PKI, so the test signs its own.
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", os.path.join(renewed, "new.key"),
                        "-out", os.path.join(renewed, "new.csr"),
                        "-subj", "/CN=" + HOST], check=True, capture_output=True)
        ext = os.path.join(renewed, "new.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s\n" % HOST)
        subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(renewed, "new.csr"),
                        "-CA", os.path.join(renewed, "int.pem"),
                        "-CAkey", os.path.join(renewed, "int.key"), "-CAcreateserial",
                        "-days", "30", "-extfile", ext,
                        "-out", os.path.join(renewed, "new.pem")],
                       check=True, capture_output=True)
        chain = os.path.join(self.certs, "server-chain.pem")
        with open(chain, "wb") as out:
            for name in ("new.key", "new.pem", "int.pem"):
                with open(os.path.join(renewed, name), "rb") as f:
                    out.write(f.read())

        self.assertEqual(self.inst.postern("reload").returncode, 0)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = set(self.inst.service_pids().get("tlsproxy", []))
            if pids - old_pids:
                break
            time.sleep(0.1)
        self.assertTrue(pids - old_pids, "no new tlsproxy after reload")

        # The live session still relays.
        self.assertEqual(caller.recv_exactly(7), b"hello\r\n")
        caller.sock.sendall(b"world\r\n")
        thread.join(20)
        caller.close()
        self.assertEqual(result["answer"], b"world\r\n")

        # A new session gets the renewed certificate.
        expected = subprocess.run(
            ["openssl", "x509", "-noout", "-fingerprint", "-sha256",
             "-in", os.path.join(renewed, "new.pem")],
            capture_output=True, check=True, text=True).stdout
        self.assertEqual(self.presented_fingerprint(),
                         expected.strip().split("=", 1)[1])

    def presented_fingerprint(self):
        """SHA-256 fingerprint of the certificate a new session presents."""
        result = {}

        def run():
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            with self.client_context().wrap_socket(raw, server_hostname=HOST) as tls:
                digest = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
                result["fp"] = ":".join(digest[i:i + 2].upper()
                                        for i in range(0, 64, 2))
                tls.recv(1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        caller = self.pass_server()
        self.assertEqual(caller.read_reply()["status"], "ok")
        caller.sock.sendall(b"x")
        thread.join(20)
        caller.close()
        return result.get("fp")

class TlsCheckTest(unittest.TestCase):
    """postern tls-check on certificates the test breaks on purpose."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postern-tls-check-")
        cls.certs = os.path.join(cls.dir, "certs")
        make_certs(cls.certs)
        cls.etc = os.path.join(cls.dir, "etc")
        os.makedirs(cls.etc)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def cert(self, name):
        return os.path.join(self.certs, name)

    def write_chain(self, name, parts):
        path = self.cert(name)
        with open(path, "wb") as out:
            for part in parts:
                with open(self.cert(part), "rb") as f:
                    out.write(f.read())
        return path

    def tls_check(self, chain):
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("myhostname = %s\nsmtpd_tls_chain_files = %s\n"
                    "smtpd_tls_CAfile = %s\n" % (HOST, chain, self.cert("ca.pem")))
        return subprocess.run([POSTERN_CLI, "-c", self.etc, "tls-check"],
                              capture_output=True, text=True, timeout=30)

    def test_good_chain_passes(self):
        result = self.tls_check(self.cert("server-chain.pem"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("ok: the chain verifies up to a trusted root", result.stdout)
        self.assertIn("ok: the leaf names cover myhostname", result.stdout)

    def test_missing_intermediate(self):
        chain = self.write_chain("noint.pem", ["server.key", "server.pem"])
        result = self.tls_check(chain)
        self.assertEqual(result.returncode, 1)
        self.assertIn("error: the chain does not verify up to a trusted root",
                      result.stderr)

    def test_key_does_not_match(self):
        chain = self.write_chain("mismatch.pem", ["sni.key", "server.pem", "int.pem"])
        result = self.tls_check(chain)
        self.assertEqual(result.returncode, 1)
        self.assertIn("error: the private key does not match", result.stderr)

    def test_wrong_order(self):
        chain = self.write_chain("order.pem", ["server.key", "int.pem", "server.pem"])
        result = self.tls_check(chain)
        self.assertEqual(result.returncode, 1)
        self.assertIn("is not issued by certificate 2", result.stderr)

    def test_name_does_not_cover_myhostname(self):
        chain = self.write_chain("sni-only.pem", ["sni.key", "sni.pem", "int.pem"])
        result = self.tls_check(chain)
        self.assertEqual(result.returncode, 1)
        self.assertIn("do not cover myhostname %s" % HOST, result.stderr)

    def test_expired_certificate(self):
        template = os.path.join(self.dir, "expired.tmpl")
        with open(template, "w") as f:
            f.write('cn = "%s"\ndns_name = "%s"\ntls_www_server\nserial = 77\n'
                    'activation_date = "2020-01-01 00:00:00 UTC"\n'
                    'expiration_date = "2020-02-01 00:00:00 UTC"\n' % (HOST, HOST))
        subprocess.run(["certtool", "--generate-certificate",
                        "--load-privkey", self.cert("server.key"),
                        "--load-ca-certificate", self.cert("int.pem"),
                        "--load-ca-privkey", self.cert("int.key"),
                        "--template", template,
                        "--outfile", self.cert("expired.pem")],
                       check=True, capture_output=True)
        chain = self.write_chain("expired-chain.pem",
                                 ["server.key", "expired.pem", "int.pem"])
        result = self.tls_check(chain)
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr, r"certificate 1 \(the leaf\) expired \d+ days ago")

    def test_expiring_soon_warns(self):
        soon = os.path.join(self.dir, "soon")
        env = dict(os.environ, DAYS="5")
        subprocess.run([MAKE_CERTS, soon, HOST], check=True, capture_output=True, env=env)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("myhostname = %s\nsmtpd_tls_chain_files = %s\n"
                    "smtpd_tls_CAfile = %s\n" % (HOST, os.path.join(soon, "server-chain.pem"),
                                                 os.path.join(soon, "ca.pem")))
        result = subprocess.run([POSTERN_CLI, "-c", self.etc, "tls-check"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr, r"warning: certificate 1 \(the leaf\) expires in [45] days")


if __name__ == "__main__":
    unittest.main()
