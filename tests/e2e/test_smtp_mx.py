"""End-to-end tests of MX lookups in the smtp delivery agent.

One instance relays mail from inside mynetworks. Its smtp agent asks the
DNS server of dns_server.py (smtp_dns_resolver_address) and reaches the
test servers through transport_maps entries "DOMAIN=smtp:DOMAIN:PORT",
which keep the MX lookup but use a port a test may bind. Each domain's
servers sit on their own 127.0.0.x address, all on SINK_PORT.
"""

import json
import os
import smtplib
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dns_server import DnsServer, SERVFAIL, TYPE_MX  # noqa: E402
from harness import BUILD_DIR, Instance, SmtpSink  # noqa: E402

# The port of every test SMTP server, in the range these tests may use.
SINK_PORT = 61025

DOMAINS = ("refused.test", "busy.test", "equal.test", "implicit.test",
           "nullmx.test", "gone.test", "servfail.test", "loop.test",
           "loopaddr.test", "behind.test", "tcp.test", "limit.test")

SENDERS = ("alice", "bob", "carol", "dave", "erin")


class GreetingServer:
    """Accepts connections on host:port, sends one greeting line and
    closes; counts the connections."""

    def __init__(self, host, port, greeting=b"421 4.3.2 Too busy, try later\r\n"):
        self.greeting = greeting
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                try:
                    conn.sendall(self.greeting)
                    conn.settimeout(5)
                    conn.recv(512)  # QUIT, or the agent closing
                except OSError:
                    pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def build_dns():
    dns = DnsServer()
    dns.add_mx("refused.test", 10, "mx1.refused.test")
    dns.add_a("mx1.refused.test", "127.0.0.10")
    dns.add_mx("refused.test", 20, "mx2.refused.test")
    dns.add_a("mx2.refused.test", "127.0.0.11")

    dns.add_mx("busy.test", 10, "mx1.busy.test")
    dns.add_a("mx1.busy.test", "127.0.0.12")
    dns.add_mx("busy.test", 20, "mx2.busy.test")
    dns.add_a("mx2.busy.test", "127.0.0.13")

    dns.add_mx("equal.test", 10, "a.equal.test")
    dns.add_a("a.equal.test", "127.0.0.14")
    dns.add_mx("equal.test", 10, "b.equal.test")
    dns.add_a("b.equal.test", "127.0.0.15")

    dns.add_a("implicit.test", "127.0.0.16")

    dns.add_mx("nullmx.test", 0, ".")

    dns.set_rcode("servfail.test", SERVFAIL)

    dns.add_mx("loop.test", 10, "mail.example.test")

    dns.add_mx("loopaddr.test", 10, "self.loopaddr.test")
    dns.add_a("self.loopaddr.test", "127.0.0.1")

    dns.add_mx("behind.test", 5, "mx.behind.test")
    dns.add_a("mx.behind.test", "127.0.0.17")
    dns.add_mx("behind.test", 10, "mail.example.test")

    dns.add_mx("tcp.test", 10, "mx.tcp.test")
    dns.add_a("mx.tcp.test", "127.0.0.18")
    dns.set_udp_truncated("tcp.test")

    for i, addr in enumerate(("127.0.0.19", "127.0.0.20", "127.0.0.21")):
        dns.add_mx("limit.test", 10 * (i + 1), "mx%d.limit.test" % i)
        dns.add_a("mx%d.limit.test" % i, addr)
    return dns


class MxTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for program in ("master/master", "smtpd/smtpd", "qmgr/qmgr", "smtp/smtp"):
            if not os.path.exists(os.path.join(BUILD_DIR, program)):
                raise unittest.SkipTest("%s is not built" % program)
        cls.dns = build_dns()
        routes = ", ".join("%s=smtp:%s:%d" % (d, d, SINK_PORT) for d in DOMAINS)
        cls.inst = Instance(users=SENDERS, main_cf={
            "smtp_dns_resolver_address": "127.0.0.1:%d" % cls.dns.port,
            "transport_maps": "inline:{ %s }" % routes,
            "smtp_connection_cache_time_limit": "0",
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "5s",
        })
        cls.inst.start()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.dns.close()

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for server in self.servers:
            server.close()

    def sink(self, addr):
        sink = SmtpSink(host=addr, port=SINK_PORT)
        self.servers.append(sink)
        return sink

    def greeter(self, addr):
        server = GreetingServer(addr, SINK_PORT)
        self.servers.append(server)
        return server

    def send(self, sender, rcpt):
        message = ("From: %s@example.test\r\nTo: %s\r\nSubject: mx\r\n\r\n"
                   "hello\r\n" % (sender, rcpt)).encode()
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port,
                          source_address=("127.0.0.2", 0), timeout=20) as s:
            s.sendmail("%s@example.test" % sender, [rcpt], message)

    def wait_for_log(self, text, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.inst.log_text()
            if text in log:
                return log
            time.sleep(0.1)
        self.fail("%r not in the maillog:\n%s" % (text, self.inst.log_text()[-3000:]))

    def queue_entry(self, rcpt, timeout=15):
        """The `postern queue --json` recipient entry of rcpt once it has a
        delay reason."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.inst.postern("queue", "--json").stdout
            for line in out.splitlines():
                for entry in json.loads(line)["recipients"]:
                    if entry["address"] == rcpt and entry["delay_reason"]:
                        return entry
            time.sleep(0.2)
        self.fail("no deferred entry for %s in postern queue --json" % rcpt)

    def bounce_for(self, sender, rcpt):
        """The one bounce in sender's mailbox, which names rcpt."""
        bounce = self.inst.wait_for_messages(sender, 1)[0]
        self.assertIn(rcpt.encode(), bounce)
        return bounce

    def test_lower_preference_refused(self):
        sink = self.sink("127.0.0.11")
        self.send("alice", "user@refused.test")
        self.assertEqual(sink.wait_for(1)[0][1], ["user@refused.test"])
        self.wait_for_log("relay=mx2.refused.test[127.0.0.11]:%d" % SINK_PORT)
        self.assertIn("connect to mx1.refused.test[127.0.0.10]:%d" % SINK_PORT,
                      self.inst.log_text())

    def test_lower_preference_busy(self):
        busy = self.greeter("127.0.0.12")
        sink = self.sink("127.0.0.13")
        self.send("alice", "user@busy.test")
        self.assertEqual(sink.wait_for(1)[0][1], ["user@busy.test"])
        self.assertEqual(busy.connections, 1)
        self.wait_for_log("relay=mx2.busy.test[127.0.0.13]:%d" % SINK_PORT)

    def test_equal_preferences_shared(self):
        first, second = self.sink("127.0.0.14"), self.sink("127.0.0.15")
        count = 16
        for i in range(count):
            self.send("alice", "user%d@equal.test" % i)
        deadline = time.monotonic() + 20
        while (len(first.messages) + len(second.messages) < count
               and time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(len(first.messages) + len(second.messages), count)
        # Each exchanger comes first about half the time; all 16 going
        # to one of them has a chance of 2^-15.
        self.assertGreater(len(first.messages), 0)
        self.assertGreater(len(second.messages), 0)

    def test_implicit_mx(self):
        sink = self.sink("127.0.0.16")
        self.send("alice", "user@implicit.test")
        self.assertEqual(sink.wait_for(1)[0][1], ["user@implicit.test"])
        self.wait_for_log("relay=implicit.test[127.0.0.16]:%d" % SINK_PORT)
        self.assertGreater(self.dns.queried("implicit.test", TYPE_MX), 0)

    def test_null_mx_bounces(self):
        self.send("bob", "user@nullmx.test")
        bounce = self.bounce_for("bob", "user@nullmx.test")
        self.assertIn(b"5.1.10", bounce)
        self.assertIn(b"Recipient address has null MX", bounce)

    def test_nxdomain_bounces(self):
        self.send("carol", "user@gone.test")
        bounce = self.bounce_for("carol", "user@gone.test")
        self.assertIn(b"5.1.2", bounce)
        self.assertIn(b"Host or domain name not found", bounce)

    def test_servfail_defers(self):
        self.send("alice", "user@servfail.test")
        entry = self.queue_entry("user@servfail.test")
        self.assertEqual(entry["status"], "pending")
        self.assertIn("servfail.test", entry["delay_reason"])
        self.assertIn("lookup", entry["delay_reason"])
        # The JSON listing has no status code field; the maillog has it.
        log = self.wait_for_log("to=<user@servfail.test>")
        line = [l for l in log.splitlines()
                if "to=<user@servfail.test>" in l and "status=deferred" in l]
        self.assertTrue(line, log[-2000:])
        self.assertIn("dsn=4.4.3", line[-1])

    def test_mx_to_myhostname_bounces(self):
        self.send("dave", "user@loop.test")
        bounce = self.bounce_for("dave", "user@loop.test")
        self.assertIn(b"5.4.6", bounce)
        self.assertIn(b"mail for loop.test loops back to myself", bounce)

    def test_mx_to_own_address_bounces(self):
        self.send("erin", "user@loopaddr.test")
        bounce = self.bounce_for("erin", "user@loopaddr.test")
        self.assertIn(b"5.4.6", bounce)
        self.assertIn(b"mail for loopaddr.test loops back to myself", bounce)

    def test_better_mx_than_self_delivers(self):
        sink = self.sink("127.0.0.17")
        self.send("alice", "user@behind.test")
        self.assertEqual(sink.wait_for(1)[0][1], ["user@behind.test"])

    def test_truncated_udp_answer_retried_over_tcp(self):
        sink = self.sink("127.0.0.18")
        self.send("alice", "user@tcp.test")
        self.assertEqual(sink.wait_for(1)[0][1], ["user@tcp.test"])
        with self.dns.lock:
            transports = [t for t, n, q in self.dns.queries
                          if n == "tcp.test" and q == TYPE_MX]
        self.assertIn("udp", transports)
        self.assertIn("tcp", transports)

    def test_session_limit_stops_after_two(self):
        servers = [self.greeter(a) for a in ("127.0.0.19", "127.0.0.20", "127.0.0.21")]
        self.send("alice", "user@limit.test")
        entry = self.queue_entry("user@limit.test")
        self.assertIn("421 4.3.2 Too busy", entry["delay_reason"])
        self.assertEqual([s.connections for s in servers], [1, 1, 0])


if __name__ == "__main__":
    unittest.main()
