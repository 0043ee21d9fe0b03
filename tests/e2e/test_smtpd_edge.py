"""End-to-end edge cases of smtpd: hostile and broken clients.

One shared instance with a small message_size_limit. Clients connect
from 127.0.0.1, outside mynetworks, so every relay attempt must fail.
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance  # noqa: E402

SIZE_LIMIT = 1000
RCPT_LIMIT = 5
TRANSACTION = (b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n")


def read_until_closed(sock, timeout=10):
    """Read until the server closes the connection; return the bytes."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def read_replies(sock, count, timeout=10):
    """Read until count final reply lines ("NNN " lines) have arrived."""
    sock.settimeout(timeout)
    data = b""
    while sum(1 for line in data.split(b"\r\n")
              if len(line) >= 4 and line[3:4] == b" ") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [line.decode("latin-1") for line in data.split(b"\r\n")
            if len(line) >= 4 and line[3:4] == b" "]


class SmtpdEdgeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        users = (["alice"] + ["user%02d" % i for i in range(10)]
                 + ["rcpt%d" % i for i in range(RCPT_LIMIT)])
        cls.inst = Instance(users=users, main_cf={
            "relay_domains": "relay.test",
            "message_size_limit": str(SIZE_LIMIT),
            "smtpd_recipient_limit": str(RCPT_LIMIT),
        })
        cls.inst.start()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.inst.smtp_port),
                                        timeout=10,
                                        source_address=("127.0.0.1", 0))
        self.addCleanup(sock.close)
        self.assertEqual(read_replies(sock, 1), ["220 mail.example.test ESMTP Postern"])
        return sock

    def rcpt_reply(self, address):
        sock = self.connect()
        sock.sendall(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\n"
                     b"RCPT TO:<" + address + b">\r\nQUIT\r\n")
        replies = read_replies(sock, 4)
        self.assertEqual(len(replies), 4, replies)
        return replies[2]

    def incoming_files(self):
        """Queue files in incoming/, without the temporary dot-files."""
        names = os.listdir(os.path.join(self.inst.queue_dir, "incoming"))
        return [name for name in names if not name.startswith(".")]

    def wait_until_removed(self, queue_id, timeout=20):
        """Wait until qmgr logs that it removed the queue file."""
        deadline = time.monotonic() + timeout
        while "%s: removed" % queue_id not in self.inst.log_text():
            if time.monotonic() > deadline:
                self.fail("%s not removed after %s s" % (queue_id, timeout))
            time.sleep(0.05)

    def test_relay_domain_routed_local_part_denied(self):
        # The relay_domains host may act on "%", "!" or a quoted "@" in
        # the local part and send the mail anywhere.
        for address in (b"user%evil.example@relay.test",
                        b'"user@evil.example"@relay.test',
                        b"evil.example!user@relay.test"):
            with self.subTest(address=address):
                self.assertTrue(self.rcpt_reply(address).startswith("554 5.7.1 "))

    def test_relay_domain_plain_address_accepted(self):
        self.assertEqual(self.rcpt_reply(b"user@relay.test"), "250 2.1.5 Ok")

    def test_relay_attempts_denied(self):
        for address in (b"@example.test:evil@evil.example",
                        b"evil@[127.0.0.1]",
                        b"evil@[IPv6:::1]",
                        b"evil@sub.example.test",
                        b"postmaster"):
            with self.subTest(address=address):
                self.assertTrue(self.rcpt_reply(address).startswith("554 5.7.1 "))

    def test_routed_local_part_in_local_domain_unknown(self):
        for address in (b"alice%evil.example@example.test",
                        b'"alice@evil.example"@example.test',
                        b"evil.example!alice@example.test"):
            with self.subTest(address=address):
                self.assertTrue(self.rcpt_reply(address).startswith("550 5.1.1 "))

    def test_nul_byte_in_command(self):
        sock = self.connect()
        sock.sendall(b"EHLO a\x00b\r\nNOOP\r\nQUIT\r\n")
        self.assertEqual(read_replies(sock, 3),
                         ["500 5.5.2 Error: bad syntax", "250 2.0.0 Ok",
                          "221 2.0.0 Bye"])

    def test_smuggling_variants_rejected(self):
        # Each fake end of data is followed by a second transaction that
        # must stay part of the first message, which is then rejected.
        smuggled = (b"MAIL FROM:<evil@client.test>\r\n"
                    b"RCPT TO:<user01@example.test>\r\nDATA\r\n"
                    b"Subject: smuggled\r\n\r\nsmuggled\r\n")
        for fake_end, reply in ((b"\n.\n", "550 5.5.2 Error: bare <LF> received"),
                                (b"\r.\r", "550 5.5.2 Error: bare <CR> received"),
                                (b"\n.\r\n", "550 5.5.2 Error: bare <LF> received"),
                                (b"\r\n.\n", "550 5.5.2 Error: bare <LF> received")):
            with self.subTest(fake_end=fake_end):
                sock = self.connect()
                sock.sendall(TRANSACTION + b"Subject: first\r\n\r\nline"
                             + fake_end + smuggled + b".\r\nQUIT\r\n")
                replies = read_replies(sock, 6)
                self.assertEqual(replies[4:], [reply, "221 2.0.0 Bye"])
        self.assertEqual(self.inst.messages("user01"), [])

    def test_half_closed_client_gets_reply(self):
        # The client sends a whole transaction, then shuts down its
        # sending side without QUIT and waits for the replies.
        sock = self.connect()
        sock.sendall(TRANSACTION.replace(b"alice", b"user02")
                     + b"Subject: half\r\n\r\nbody\r\n.\r\n")
        sock.shutdown(socket.SHUT_WR)
        replies = [line for line in read_until_closed(sock).split(b"\r\n")
                   if line[3:4] == b" "]
        self.assertEqual(len(replies), 5, replies)
        self.assertTrue(replies[4].startswith(b"250 2.0.0 Ok: queued as "), replies)
        self.assertEqual(len(self.inst.wait_for_messages("user02", 1)), 1)

    def test_client_vanishes_mid_data(self):
        for linger in (False, True):
            with self.subTest(reset=linger):
                sock = self.connect()
                sock.sendall(TRANSACTION.replace(b"alice", b"user03")
                             + b"Subject: gone\r\n\r\npartial")
                read_replies(sock, 4)
                if linger:
                    # SO_LINGER with a zero timeout: close sends a RST.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
        deadline = time.monotonic() + 5
        while self.incoming_files() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.incoming_files(), [])
        time.sleep(0.3)
        self.assertEqual(self.inst.messages("user03"), [])

    def test_size_limit_counts_stored_bytes(self):
        # message_size_limit counts the message as stored, with LF line
        # ends: a message of exactly SIZE_LIMIT stored bytes passes.
        head = b"Subject: size\n\n"
        for stored_size, reply in ((SIZE_LIMIT, "250"), (SIZE_LIMIT + 1, "552")):
            with self.subTest(stored_size=stored_size):
                body = head + b"z" * (stored_size - len(head) - 1) + b"\n"
                self.assertEqual(len(body), stored_size)
                sock = self.connect()
                sock.sendall(TRANSACTION.replace(b"alice", b"user04")
                             + body.replace(b"\n", b"\r\n") + b".\r\nQUIT\r\n")
                replies = read_replies(sock, 6)
                self.assertEqual(replies[4][:3], reply, replies)
        self.assertEqual(len(self.inst.wait_for_messages("user04", 1)), 1)

    def test_empty_message_accepted(self):
        sock = self.connect()
        sock.sendall(TRANSACTION.replace(b"alice", b"user05") + b".\r\nQUIT\r\n")
        replies = read_replies(sock, 6)
        self.assertTrue(replies[4].startswith("250 2.0.0 Ok: queued as "), replies)
        self.assertEqual(len(self.inst.wait_for_messages("user05", 1)), 1)

    def test_recipients_over_limit_keep_session(self):
        # More 452 replies than smtpd_hard_error_limit (20): the message
        # still goes to the recipients accepted before the limit.
        accepted = [b"rcpt%d@example.test" % i for i in range(RCPT_LIMIT)]
        over = [b"alice@example.test"] * 25
        count = len(accepted) + len(over)
        sock = self.connect()
        sock.sendall(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\n"
                     + b"".join(b"RCPT TO:<%s>\r\n" % a for a in accepted + over)
                     + b"DATA\r\nSubject: many\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        replies = read_replies(sock, count + 5)
        self.assertEqual(replies[2:2 + RCPT_LIMIT], ["250 2.1.5 Ok"] * RCPT_LIMIT)
        self.assertEqual(replies[2 + RCPT_LIMIT:2 + count],
                         ["452 4.5.3 Error: too many recipients"] * len(over))
        self.assertEqual(replies[2 + count], "354 End data with <CR><LF>.<CR><LF>")
        self.assertTrue(replies[3 + count].startswith("250 2.0.0 Ok: queued as "),
                        replies[3 + count:])
        for i in range(RCPT_LIMIT):
            self.assertEqual(len(self.inst.wait_for_messages("rcpt%d" % i, 1)), 1)

    def test_repeated_recipient_gets_one_copy(self):
        sock = self.connect()
        sock.sendall(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\n"
                     b"RCPT TO:<user07@example.test>\r\n"
                     b"RCPT TO:<user07@example.test>\r\n"
                     b"RCPT TO:<USER07@Example.Test>\r\n"
                     b"RCPT TO:<user08@example.test>\r\n"
                     b"DATA\r\nSubject: twice\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        replies = read_replies(sock, 9)
        self.assertEqual(replies[2:6], ["250 2.1.5 Ok"] * 4)
        self.assertTrue(replies[7].startswith("250 2.0.0 Ok: queued as "), replies)
        self.wait_until_removed(replies[7].split()[-1])
        self.assertEqual(len(self.inst.messages("user07")), 1)
        self.assertEqual(len(self.inst.messages("user08")), 1)

    def test_commands_after_quit_ignored(self):
        sock = self.connect()
        sock.sendall(b"EHLO client.test\r\nQUIT\r\nNOOP\r\nRSET\r\n")
        data = read_until_closed(sock)
        self.assertTrue(data.endswith(b"221 2.0.0 Bye\r\n"), data)


if __name__ == "__main__":
    unittest.main()
