"""End-to-end tests of smtpd with real SMTP clients.

Most cases share one instance; the concurrency and signal cases start
their own. Messages are checked byte for byte in the Maildir, after the
headers that Postern adds (Return-Path, Delivered-To, Received).
"""

import os
import random
import resource
import select
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import unittest
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Instance, free_port  # noqa: E402

ADDED_HEADERS = (b"Return-Path:", b"Delivered-To:", b"Received:")
SENDER = "sender@client.test"


def strip_added_headers(delivered):
    """Return the message without the headers Postern adds in front of it."""
    lines = delivered.split(b"\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith(ADDED_HEADERS):
            i += 1
        elif lines[i].startswith(b"\t") and i > 0:
            i += 1
        else:
            break
    return b"\n".join(lines[i:])


def as_stored(message):
    """Return message (CRLF line ends) as the queue and Maildir store it."""
    return message.replace(b"\r\n", b"\n")


class SmtpConnection:
    """A raw SMTP connection that reads reply lines, for dialogue tests."""

    def __init__(self, port, source="127.0.0.1", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        """Read one complete reply; return its lines as text, CRLF removed."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed; read so far: %r"
                                          % (lines, ))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def command(self, line):
        """Send one command line; return the last line of its reply."""
        self.send(line.encode() + b"\r\n")
        return self.read_reply()[-1]

    def close(self):
        self.sock.close()


class SmtpdDialogueTest(unittest.TestCase):
    """Commands, replies and deliveries on one shared instance."""

    @classmethod
    def setUpClass(cls):
        # user01..user09 each get one test's message; rcpt00..rcpt99 the
        # message to 100 recipients.
        users = (["alice", "bob"] + ["user%02d" % i for i in range(10)]
                 + ["rcpt%02d" % i for i in range(100)])
        cls.inst = Instance(users=users)
        cls.inst.start()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def connect(self, source="127.0.0.1"):
        conn = SmtpConnection(self.inst.smtp_port, source=source)
        self.addCleanup(conn.close)
        banner = conn.read_reply()
        self.assertEqual(banner, ["220 mail.example.test ESMTP Postern"])
        return conn

    def smtp(self):
        client = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=30)
        self.addCleanup(client.close)
        return client

    def check_delivered(self, user, message, count=1):
        """Wait for the user's count-th message and compare it with message."""
        delivered = self.inst.wait_for_messages(user, count)[count - 1]
        self.assertEqual(strip_added_headers(delivered), as_stored(message))
        return delivered

    # -- deliveries with real clients ------------------------------------

    def test_smtplib_plain_message(self):
        message = (b"From: <sender@client.test>\r\nTo: <alice@example.test>\r\n"
                   b"Subject: plain\r\n\r\nHello Alice.\r\n")
        client = self.smtp()
        refused = client.sendmail(SENDER, ["alice@example.test"], message)
        self.assertEqual(refused, {})
        client.quit()
        delivered = self.check_delivered("alice", message)
        self.assertIn(b"Received: from ", delivered)
        self.assertIn(b"\n\tfor <alice@example.test>; ", delivered)

    def test_swaks_plain_message(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks is not installed")
        # swaks ends the data with CRLF itself, so the file has no final one.
        message = b"From: swaks@client.test\r\nSubject: by swaks\r\n\r\nBody by swaks."
        path = os.path.join(self.inst.dir, "swaks.eml")
        with open(path, "wb") as f:
            f.write(message)
        message += b"\r\n"
        result = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.inst.smtp_port),
             "--from", SENDER, "--to", "user01@example.test", "--data", path],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", result.stdout)
        self.check_delivered("user01", message)

    def test_curl_plain_message(self):
        message = b"From: curl@client.test\r\nSubject: by curl\r\n\r\nBody by curl.\r\n"
        path = os.path.join(self.inst.dir, "curl.eml")
        with open(path, "wb") as f:
            f.write(message)
        result = subprocess.run(
            ["curl", "-sS", "--url", "smtp://127.0.0.1:%d" % self.inst.smtp_port,
             "--mail-from", SENDER, "--mail-rcpt", "user02@example.test",
             "--upload-file", path],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.check_delivered("user02", message)

    def test_mime_5mb_attachment(self):
        msg = MIMEMultipart()
        msg["From"] = SENDER
        msg["To"] = "user03@example.test"
        msg["Subject"] = "attachment"
        msg.attach(MIMEText("See the attachment.\n"))
        payload = random.Random(5).randbytes(5 * 1024 * 1024)
        msg.attach(MIMEApplication(payload, Name="blob.bin"))
        message = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        client = self.smtp()
        client.sendmail(SENDER, ["user03@example.test"], message)
        client.quit()
        self.check_delivered("user03", message)

    def test_8bit_body(self):
        message = ("From: <sender@client.test>\r\nSubject: 8bit\r\n"
                   "MIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n\r\n"
                   "Grüße aus Köln, naïve café, 日本語.\r\n").encode("utf-8")
        message += bytes(range(0x80, 0x100)) + b"\r\n"
        client = self.smtp()
        client.ehlo()
        self.assertTrue(client.has_extn("8BITMIME"))
        client.sendmail(SENDER, ["user04@example.test"], message,
                        mail_options=["BODY=8BITMIME"])
        client.quit()
        self.check_delivered("user04", message)

    def test_lines_starting_with_dot(self):
        message = (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n"
                   b"..two\r\n. space\r\nend\r\n.")
        client = self.smtp()
        client.sendmail(SENDER, ["user05@example.test"], message + b"\r\n")
        client.quit()
        self.check_delivered("user05", message + b"\r\n")

    def test_998_character_line(self):
        line = bytes(random.Random(998).choice(b"abcdefghij ") for _ in range(998))
        message = b"Subject: long line\r\n\r\n" + line + b"\r\nshort\r\n"
        client = self.smtp()
        client.sendmail(SENDER, ["user06@example.test"], message)
        client.quit()
        self.check_delivered("user06", message)

    def test_100_recipients(self):
        rcpts = ["rcpt%02d@example.test" % i for i in range(100)]
        message = b"Subject: to many\r\n\r\nOne message for a hundred.\r\n"
        before = {r: len(self.inst.messages(r.split("@")[0])) for r in rcpts}
        client = self.smtp()
        refused = client.sendmail(SENDER, rcpts, message)
        self.assertEqual(refused, {})
        client.quit()
        for rcpt in rcpts:
            user = rcpt.split("@")[0]
            delivered = self.inst.wait_for_messages(user, before[rcpt] + 1)
            self.assertEqual(strip_added_headers(delivered[-1]), as_stored(message),
                             "message of %s" % rcpt)
            # With several recipients the Received header names none.
            self.assertNotIn(b"\tfor <", delivered[-1])

    # -- protocol behaviour ----------------------------------------------

    def test_pipelined_group_replies_in_one_write(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        conn.send(b"MAIL FROM:<sender@client.test>\r\n"
                  b"RCPT TO:<bob@example.test>\r\n"
                  b"RCPT TO:<nobody@example.test>\r\n"
                  b"DATA\r\n")
        # Every reply of the group arrives in the first read.
        ready, _, _ = select.select([conn.sock], [], [], 10)
        self.assertTrue(ready)
        first = conn.sock.recv(65536)
        self.assertEqual(first.count(b"\r\n"), 4, first)
        conn.buf = first
        self.assertEqual(conn.read_reply(), ["250 2.1.0 Ok"])
        self.assertEqual(conn.read_reply(), ["250 2.1.5 Ok"])
        self.assertTrue(conn.read_reply()[0].startswith("550 5.1.1 <nobody@example.test>"))
        self.assertEqual(conn.read_reply(), ["354 End data with <CR><LF>.<CR><LF>"])
        message = b"Subject: pipelined\r\n\r\nsent in one go\r\n"
        conn.send(message + b".\r\nQUIT\r\n")
        self.assertTrue(conn.read_reply()[0].startswith("250 2.0.0 Ok: queued as "))
        self.assertEqual(conn.read_reply(), ["221 2.0.0 Bye"])
        self.check_delivered("bob", message)

    def test_ehlo_keywords(self):
        conn = self.connect()
        conn.send(b"EHLO client.test\r\n")
        reply = conn.read_reply()
        self.assertEqual(reply[0], "250-mail.example.test")
        for keyword in ("PIPELINING", "SIZE 10240000", "8BITMIME",
                        "ENHANCEDSTATUSCODES"):
            self.assertTrue(any(line[4:] == keyword for line in reply), reply)

    def test_mail_size_over_limit(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        self.assertEqual(conn.command("MAIL FROM:<a@client.test> SIZE=10240001"),
                         "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(conn.command("MAIL FROM:<a@client.test> SIZE=10240000"),
                         "250 2.1.0 Ok")

    def test_data_over_size_limit(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        conn.command("MAIL FROM:<a@client.test>")
        conn.command("RCPT TO:<bob@example.test>")
        self.assertTrue(conn.command("DATA").startswith("354 "))
        line = b"x" * 998 + b"\r\n"
        conn.send(b"Subject: big\r\n\r\n" + line * 10500 + b".\r\n")
        self.assertEqual(conn.read_reply(),
                         ["552 5.3.4 Message size exceeds fixed limit"])
        self.assertEqual(conn.command("NOOP"), "250 2.0.0 Ok")

    def test_bare_lf_rejected(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        conn.command("MAIL FROM:<a@client.test>")
        conn.command("RCPT TO:<bob@example.test>")
        conn.command("DATA")
        conn.send(b"Subject: bare\r\n\r\nline one\nline two\r\n.\r\n")
        self.assertEqual(conn.read_reply(), ["550 5.5.2 Error: bare <LF> received"])
        self.assertEqual(conn.command("RSET"), "250 2.0.0 Ok")

    def test_lf_dot_crlf_does_not_end_data(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        conn.command("MAIL FROM:<a@client.test>")
        conn.command("RCPT TO:<bob@example.test>")
        conn.command("DATA")
        conn.send(b"Subject: smuggle\r\n\r\ntext\n.\r\nMAIL FROM:<x@y.test>\r\n")
        ready, _, _ = select.select([conn.sock], [], [], 1)
        self.assertEqual(ready, [], "smtpd replied before the real end of data")
        conn.send(b".\r\n")
        self.assertEqual(conn.read_reply(), ["550 5.5.2 Error: bare <LF> received"])

    def test_long_command_line(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        self.assertEqual(conn.command("NOOP " + "x" * 5000), "500 5.5.2 Line too long")
        self.assertEqual(conn.command("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(conn.command("MAIL FROM:<a@client.test>"), "250 2.1.0 Ok")

    def test_relay_from_outside_denied(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        conn.command("MAIL FROM:<a@client.test>")
        self.assertEqual(conn.command("RCPT TO:<someone@elsewhere.test>"),
                         "554 5.7.1 <someone@elsewhere.test>: Relay access denied")
        self.assertIn("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 "
                      "<someone@elsewhere.test>: Relay access denied; "
                      "from=<a@client.test> to=<someone@elsewhere.test> "
                      "proto=ESMTP helo=<client.test>", self.inst.log_text())

    def test_relay_from_mynetworks_accepted(self):
        conn = self.connect(source="127.0.0.2")
        conn.command("EHLO client.test")
        conn.command("MAIL FROM:<a@client.test>")
        self.assertEqual(conn.command("RCPT TO:<someone@elsewhere.test>"),
                         "250 2.1.5 Ok")

    def test_unknown_recipient(self):
        conn = self.connect()
        conn.command("HELO client.test")
        conn.command("MAIL FROM:<a@client.test>")
        self.assertEqual(conn.command("RCPT TO:<nobody@example.test>"),
                         "550 5.1.1 <nobody@example.test>: Recipient address "
                         "rejected: User unknown in virtual mailbox table")

    def test_command_order_and_syntax(self):
        conn = self.connect()
        cases = [
            ("MAIL FROM:<a@client.test>", "503 5.5.1 Error: send HELO/EHLO first"),
            ("EHLO", "501 5.5.4 Syntax: EHLO hostname"),
            ("HELO client.test", "250 mail.example.test"),
            ("RCPT TO:<bob@example.test>", "503 5.5.1 Error: need MAIL command"),
            ("DATA", "503 5.5.1 Error: need MAIL command"),
            ("MAIL FROM:a@client.test", "501 5.1.7 Bad sender address syntax"),
            ("MAIL TO:<a@client.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("MAIL FROM:<a@client.test> FOO=BAR", "555 5.5.4 Unsupported option: FOO"),
            ("MAIL FROM:<a@client.test> BODY=BINARYMIME",
             "501 5.5.4 Bad BODY parameter syntax"),
            ("MAIL FROM:<a@client.test>", "250 2.1.0 Ok"),
            ("MAIL FROM:<a@client.test>", "503 5.5.1 Error: nested MAIL command"),
            ("DATA", "503 5.5.1 Error: need RCPT command"),
            ("RCPT TO:<b c@example.test>", "501 5.1.3 Bad recipient address syntax"),
            ("RCPT TO:bob@example.test", "501 5.1.3 Bad recipient address syntax"),
            ("RCPT <bob@example.test>", "501 5.5.4 Syntax: RCPT TO:<address>"),
            ("RSET extra", "501 5.5.4 Syntax: RSET"),
            ("RSET", "250 2.0.0 Ok"),
            ("VRFY bob", "252 2.0.0 Not verified; send mail to attempt delivery"),
            ("VRFY", "501 5.5.4 Syntax: VRFY address"),
            ("HELP", "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
             "QUIT VRFY HELP"),
            ("NOOP", "250 2.0.0 Ok"),
            ("FOO bar", "502 5.5.2 Error: command not recognized"),
            ("", "500 5.5.2 Error: bad syntax"),
            ("AUTH PLAIN AGFsaWNlAHNlY3JldA==",
             "503 5.5.1 Error: authentication not enabled"),
            ("QUIT", "221 2.0.0 Bye"),
        ]
        for line, want in cases:
            with self.subTest(command=line):
                self.assertEqual(conn.command(line), want)

    def test_too_many_errors(self):
        conn = self.connect()
        for _ in range(19):
            self.assertEqual(conn.command("BOGUS"),
                             "502 5.5.2 Error: command not recognized")
        conn.send(b"BOGUS\r\n")
        self.assertEqual(conn.read_reply(),
                         ["502 5.5.2 Error: command not recognized"])
        self.assertEqual(conn.read_reply(),
                         ["421 4.7.0 mail.example.test Error: too many errors"])
        self.assertEqual(conn.sock.recv(100), b"")

    def test_disconnect_log_line(self):
        conn = self.connect()
        conn.command("EHLO client.test")
        conn.command("NOOP")
        conn.command("BOGUS")
        conn.command("QUIT")
        deadline = time.monotonic() + 5
        want = "ehlo=1 noop=1 quit=1 unknown=0/1 commands=3/4"
        while want not in self.inst.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(want, self.inst.log_text())


class SmtpdConcurrencyTest(unittest.TestCase):
    """Many idle sessions on one smtpd process, and the idle timeout."""

    SESSIONS = 1000
    TIMEOUT = 3

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = self.SESSIONS + 200
        if soft < want:
            if hard != resource.RLIM_INFINITY and hard < want:
                self.skipTest("RLIMIT_NOFILE hard limit %d is below %d" % (hard, want))
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self.inst = Instance(main_cf={"smtpd_timeout": "%ds" % self.TIMEOUT})
        self.inst.start()
        self.addCleanup(self.inst.stop)

    def test_idle_sessions_and_timeout(self):
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        # Reading each banner before the next connect keeps the listen
        # queue short, so no connect waits for a SYN retransmission.
        for _ in range(self.SESSIONS):
            s = socket.create_connection(("127.0.0.1", self.inst.smtp_port), timeout=10)
            socks.append(s)
            self.assertEqual(s.recv(200), b"220 mail.example.test ESMTP Postern\r\n")
        opened = time.monotonic()

        # Another client still gets through while the idle ones wait.
        message = b"Subject: busy\r\n\r\nsent past 1000 idle sessions\r\n"
        client = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10)
        client.sendmail(SENDER, ["alice@example.test"], message)
        client.quit()
        delivered = self.inst.wait_for_messages("alice", 1)
        self.assertEqual(strip_added_headers(delivered[0]), as_stored(message))

        # Each idle session gets 421 once smtpd_timeout has passed, then EOF.
        for i, s in enumerate(socks):
            s.settimeout(self.TIMEOUT + 10)
            received = b""
            while True:
                chunk = s.recv(200)
                if not chunk:
                    break
                received += chunk
            self.assertEqual(received,
                             b"421 4.4.2 mail.example.test Error: timeout exceeded\r\n",
                             "session %d" % i)
        self.assertGreaterEqual(time.monotonic() - opened, self.TIMEOUT - 0.5)


class SmtpdByHandTest(unittest.TestCase):
    """smtpd run by hand with -L: client names, SIGTERM and SIGUSR1."""

    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.stop)
        self.port = free_port()
        log = open(os.path.join(self.inst.dir, "smtpd.out"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD_DIR, "smtpd", "smtpd"), "-c", self.inst.config_dir,
             "-L", "127.0.0.1:%d" % self.port, "-o", "smtpd_peername_lookup=yes"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.addCleanup(self.stop_smtpd)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.fail("smtpd did not listen; log:\n" + self.inst.log_text())
                time.sleep(0.05)

    def stop_smtpd(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def open_session(self):
        conn = SmtpConnection(self.port)
        self.addCleanup(conn.close)
        self.assertTrue(conn.read_reply()[0].startswith("220 "))
        return conn

    def wait_for_log(self, text):
        deadline = time.monotonic() + 10
        while text not in self.inst.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(text, self.inst.log_text())

    def test_client_name_from_hosts_file(self):
        conn = self.open_session()
        port = conn.sock.getsockname()[1]
        self.wait_for_log("connect from localhost[127.0.0.1]:%d" % port)

    def test_loopback_without_name_is_unknown(self):
        conn = SmtpConnection(self.port, source="127.0.0.2")
        self.addCleanup(conn.close)
        started = time.monotonic()
        self.assertTrue(conn.read_reply()[0].startswith("220 "))
        # No DNS query is made for a loopback address, so no wait.
        self.assertLess(time.monotonic() - started, 1)
        port = conn.sock.getsockname()[1]
        self.wait_for_log("connect from unknown[127.0.0.2]:%d" % port)

    def test_sigterm_sends_421(self):
        conn = self.open_session()
        conn.command("EHLO client.test")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(conn.read_reply(),
                         ["421 4.3.2 mail.example.test Service shutting down"])
        self.assertEqual(self.proc.wait(timeout=10), 0)

    def test_sigusr1_drains(self):
        conn = self.open_session()
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        # The live session goes on until the client quits.
        self.assertEqual(conn.command("NOOP"), "250 2.0.0 Ok")
        self.assertIsNone(self.proc.poll())
        self.assertEqual(conn.command("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(self.proc.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
