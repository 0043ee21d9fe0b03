"""End-to-end tests of smtpd's defences against slow and greedy clients:
smtpd_per_request_deadline with smtpd_min_data_rate, and the per-client
smtpd_client_connection_count_limit and
smtpd_client_connection_rate_limit counted by anvil."""

import os
import select
import signal
import smtplib
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance  # noqa: E402

SENDER = "sender@client.test"
BANNER = b"220 mail.example.test ESMTP Postern\r\n"
TIMEOUT = 3
ANVIL_LINE = "anvil unix - - n - 1 anvil\n"
PORT_RANGE = range(64000, 65000)


def free_port_in_range():
    """Return a free port of this test's range on 127.0.0.1."""
    for port in PORT_RANGE:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in %s" % PORT_RANGE)


class AnvilInstance(Instance):
    """An instance whose master.cf also runs anvil from this build, and
    an extra listener on limit_port served by two smtpd processes. The
    harness connects to its own ports to see that they answer, and anvil
    counts those probes, so the tests use limit_port."""

    def __init__(self, main_cf=None):
        self.limit_port = free_port_in_range()
        super().__init__(main_cf=main_cf, master_cf_extra=ANVIL_LINE +
                         "127.0.0.1:%d inet n - n - 2 smtpd\n"
                         % self.limit_port)


class Client:
    """A raw SMTP client that can send a byte at a time."""

    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0))
        self.buf = b""

    def read_reply(self, timeout=10):
        """Return the next complete reply, or b"" at end of file.

        A reset counts as end of file: when smtpd closes a session while
        bytes the client sent are still unread, the kernel sends RST.
        """
        self.sock.settimeout(timeout)
        while True:
            lines = self.buf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if line[3:4] == b" ":
                    reply = b"\r\n".join(lines[:i + 1]) + b"\r\n"
                    self.buf = self.buf[len(reply):]
                    return reply
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                return b""
            if not chunk:
                return b""
            self.buf += chunk

    def command(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.read_reply()

    def dribble(self, data, interval=1.0, limit=20.0):
        """Send data one byte per interval seconds. Return (reply,
        seconds) as soon as the server replies, or (None, seconds) once
        all of data is sent without a reply."""
        started = time.monotonic()
        for i in range(len(data)):
            try:
                self.sock.sendall(data[i:i + 1])
            except OSError:
                break
            readable, _, _ = select.select([self.sock], [], [], interval)
            if readable:
                return self.read_reply(), time.monotonic() - started
            if time.monotonic() - started > limit:
                break
        return None, time.monotonic() - started

    def close(self):
        self.sock.close()


def start_message(client):
    """Bring client to the 354 reply of DATA for alice."""
    assert client.read_reply() == BANNER
    assert client.command("EHLO client.test").startswith(b"250")
    assert client.command("MAIL FROM:<%s>" % SENDER).startswith(b"250")
    assert client.command("RCPT TO:<alice@example.test>").startswith(b"250")
    reply = client.command("DATA")
    assert reply.startswith(b"354"), reply


class DeadlineTest(unittest.TestCase):
    """smtpd_per_request_deadline = yes with a high smtpd_min_data_rate."""

    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(main_cf={
            "smtpd_timeout": "%ds" % TIMEOUT,
            "smtpd_per_request_deadline": "yes",
            "smtpd_min_data_rate": "100000",
        })
        cls.inst.start()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def client(self):
        c = Client(self.inst.smtp_port)
        self.addCleanup(c.close)
        return c

    def test_data_dribble_cut(self):
        c = self.client()
        start_message(c)
        reply, seconds = c.dribble(b"Subject: slow\r\n\r\n" * 4)
        self.assertEqual(reply, b"421 4.4.2 mail.example.test Error: "
                         b"timeout exceeded\r\n")
        # The deadline is smtpd_timeout after DATA; each byte adds only
        # 1/100000 s.
        self.assertGreaterEqual(seconds, TIMEOUT - 1)
        self.assertLess(seconds, TIMEOUT + 2)
        self.assertEqual(c.read_reply(), b"")
        self.assertIn("request deadline exceeded after DATA",
                      self.inst.log_text())

    def test_command_dribble_cut(self):
        c = self.client()
        self.assertEqual(c.read_reply(), BANNER)
        self.assertTrue(c.command("EHLO client.test").startswith(b"250"))
        reply, seconds = c.dribble(b"NOOP and a long argument\r\n")
        self.assertEqual(reply, b"421 4.4.2 mail.example.test Error: "
                         b"timeout exceeded\r\n")
        self.assertLess(seconds, TIMEOUT + 2)
        self.assertEqual(c.read_reply(), b"")

    def test_fast_client_unaffected(self):
        message = (b"Subject: fast\r\n\r\n" +
                   b"x" * 998 + b"\r\n") * 1000
        client = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10)
        self.assertEqual(client.sendmail(SENDER, ["alice@example.test"],
                                         message), {})
        client.quit()
        self.assertEqual(len(self.inst.wait_for_messages("alice", 1)), 1)

    def test_steady_data_outlasts_timeout(self):
        # 200000 bytes a second is twice smtpd_min_data_rate, so a DATA
        # phase longer than smtpd_timeout goes on.
        c = self.client()
        start_message(c)
        started = time.monotonic()
        for _ in range(TIMEOUT + 2):
            c.sock.sendall((b"y" * 998 + b"\r\n") * 200)
            readable, _, _ = select.select([c.sock], [], [], 1.0)
            if readable:
                self.fail("reply during DATA: %r" % c.read_reply(1))
        self.assertGreater(time.monotonic() - started, TIMEOUT + 1)
        c.sock.sendall(b".\r\n")
        self.assertTrue(c.read_reply().startswith(b"250 2.0.0"))


class NoDeadlineTest(unittest.TestCase):
    """With the default smtpd_per_request_deadline = no, smtpd_timeout
    restarts with every byte, so a dribbling client is not cut."""

    def test_dribbler_not_cut(self):
        # A count limit makes smtpd ask anvil, which this master.cf lacks.
        inst = Instance(main_cf={"smtpd_timeout": "%ds" % TIMEOUT,
                                 "smtpd_client_connection_count_limit": "50"})
        inst.start()
        self.addCleanup(inst.stop)
        c = Client(inst.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.read_reply(), BANNER)
        reply, seconds = c.dribble(b"NOOP\r\n", interval=0.9)
        self.assertEqual(reply, b"250 2.0.0 Ok\r\n")
        self.assertGreater(seconds, TIMEOUT + 1)

        self.assertTrue(c.command("HELO client.test").startswith(b"250"))
        self.assertTrue(c.command("MAIL FROM:<%s>" % SENDER).startswith(b"250"))
        self.assertTrue(c.command("RCPT TO:<alice@example.test>").startswith(b"250"))
        self.assertTrue(c.command("DATA").startswith(b"354"))
        reply, seconds = c.dribble(b"X: y\r\n", interval=0.9)
        self.assertIsNone(reply)
        self.assertGreater(seconds, TIMEOUT + 1)
        c.sock.sendall(b".\r\n")
        self.assertTrue(c.read_reply().startswith(b"250 2.0.0"))
        self.assertEqual(len(inst.wait_for_messages("alice", 1)), 1)
        # This master.cf runs no anvil: smtpd logs a warning and lets clients in.
        self.assertIn("cannot connect to anvil", inst.log_text())


class CountLimitTest(unittest.TestCase):
    """smtpd_client_connection_count_limit = 5, with anvil."""

    LIMIT = 5

    def setUp(self):
        self.inst = AnvilInstance(main_cf={
            "smtpd_client_connection_count_limit": str(self.LIMIT)})
        self.inst.start()
        self.addCleanup(self.inst.stop)
        self.inst.wait_for_service("anvil")

    def connect(self, source="127.0.0.1"):
        c = Client(self.inst.limit_port, source)
        self.addCleanup(c.close)
        return c

    def open_up_to_limit(self):
        clients = []
        for i in range(self.LIMIT):
            c = self.connect()
            self.assertEqual(c.read_reply(), BANNER, "connection %d" % i)
            clients.append(c)
        return clients

    def assert_refused(self, c):
        self.assertEqual(c.read_reply(),
                         b"421 4.7.0 mail.example.test Error: too many "
                         b"connections from 127.0.0.1\r\n")
        self.assertEqual(c.read_reply(), b"")

    def test_sixth_connection_refused(self):
        clients = self.open_up_to_limit()
        self.assert_refused(self.connect())
        self.assertIn("connection count limit 5 exceeded: 6 from "
                      "unknown[127.0.0.1]", self.inst.log_text())

        # 127.0.0.2 is in mynetworks, the default exceptions.
        for i in range(self.LIMIT + 2):
            c = self.connect("127.0.0.2")
            self.assertEqual(c.read_reply(), BANNER, "127.0.0.2 #%d" % i)

        # A closed session frees its place.
        self.assertEqual(clients[0].command("QUIT")[:3], b"221")
        clients[0].close()
        deadline = time.monotonic() + 5
        while True:
            c = self.connect()
            reply = c.read_reply()
            if reply == BANNER or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(reply, BANNER)

    def test_killed_anvil_does_not_stop_mail(self):
        clients = self.open_up_to_limit()
        [old_pid] = self.inst.service_pids()["anvil"]
        os.kill(old_pid, signal.SIGKILL)

        # Mail goes on while anvil is gone or restarting.
        client = smtplib.SMTP("127.0.0.1", self.inst.limit_port, timeout=10)
        self.assertEqual(client.sendmail(SENDER, ["alice@example.test"],
                                         b"Subject: anvil\r\n\r\nstill here\r\n"), {})
        client.quit()
        self.assertEqual(len(self.inst.wait_for_messages("alice", 1)), 1)

        # The new anvil starts from zero: the open sessions were counted
        # by the old one, so five more get in and the sixth does not.
        deadline = time.monotonic() + 10
        while self.inst.service_pids().get("anvil", [old_pid]) == [old_pid]:
            self.assertLess(time.monotonic(), deadline, "anvil not restarted")
            time.sleep(0.1)
        clients += self.open_up_to_limit()
        self.assert_refused(self.connect())


class RateLimitTest(unittest.TestCase):
    """smtpd_client_connection_rate_limit = 3 per anvil_rate_time_unit."""

    def test_fourth_connection_refused(self):
        inst = AnvilInstance(main_cf={
            "smtpd_client_connection_rate_limit": "3",
            "anvil_rate_time_unit": "60s"})
        inst.start()
        self.addCleanup(inst.stop)
        inst.wait_for_service("anvil")
        for i in range(3):
            c = Client(inst.limit_port)
            self.assertEqual(c.read_reply(), BANNER, "connection %d" % i)
            self.assertEqual(c.command("QUIT")[:3], b"221")
            c.close()
        c = Client(inst.limit_port)
        self.addCleanup(c.close)
        self.assertEqual(c.read_reply(),
                         b"421 4.7.0 mail.example.test Error: too many "
                         b"connection attempts from 127.0.0.1\r\n")
        self.assertIn("connection rate limit 3 exceeded: 4 from",
                      inst.log_text())

        # The smtp listener is another service, counted apart.
        c = Client(inst.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.read_reply(), BANNER)


if __name__ == "__main__":
    unittest.main()
