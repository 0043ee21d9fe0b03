"""End-to-end tests of `postern queue`, `postern cat` and `postern flush`.

The first group reads queue files that the test writes itself (in the
format of lib/qfile.h) with no instance running. The second group relays
real mail to a test sink that replies 451, so that qmgr defers it, and
reads the deferred message back.
"""

import json
import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance, SmtpSink  # noqa: E402

QUEUES = ("incoming", "active", "deferred", "hold", "defer")


def queue_file(qid, arrival, sender, rcpts, message):
    """Bytes of a queue file; rcpts is a list of (status, address)."""
    env = "I %s\nT %d.%06d\nS %s\nC client.test\nA 192.0.2.9\nH helo.test\nP ESMTP\n" % (
        qid, int(arrival), int(round((arrival % 1) * 1e6)) % 1000000, sender)
    for status, addr in rcpts:
        env += "R %s %s\n" % (status, addr)
    env += "M\n"
    magic = "POSTERN-QUEUE 1\n"
    offset = len(magic) + len("Z %012d %012d\n" % (0, 0)) + len(env.encode())
    head = magic + "Z %012d %012d\n" % (offset, len(message)) + env
    return head.encode() + message


def write_queue_file(inst, subdir, qid, sender, rcpts, message, arrival):
    path = os.path.join(inst.queue_dir, subdir, qid)
    with open(path, "wb") as f:
        f.write(queue_file(qid, arrival, sender, rcpts, message))
    return path


def json_entries(inst):
    result = inst.postern("queue", "--json")
    if result.returncode != 0:
        raise AssertionError("postern queue --json exited %d: %s"
                             % (result.returncode, result.stderr))
    return [json.loads(line) for line in result.stdout.splitlines()]


class QueueFilesTest(unittest.TestCase):
    """Listing and printing hand-written queue files, no processes."""

    QID_HOLD = "0654321000000A0B0C0001"
    QID_DEFERRED = "0654321000000A0B0C0002"

    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.stop)
        for sub in QUEUES:
            os.makedirs(os.path.join(self.inst.queue_dir, sub))

    def test_empty_queue(self):
        result = self.inst.postern("queue")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Mail queue is empty", result.stdout)
        self.assertEqual(json_entries(self.inst), [])

    def test_json_escaping_and_fields(self):
        write_queue_file(self.inst, "hold", self.QID_HOLD, 'we "quote"@x.test',
                         [("-", "back\\slash@y.test"), ("D", "done@y.test")],
                         b"Subject: s\n\nbody\n", 1700000000.25)
        reason = "451 4.7.1 caf\u00e9 \x01 \"quoted\" \\ tab\there"
        with open(os.path.join(self.inst.queue_dir, "defer", self.QID_HOLD), "wb") as f:
            f.write(b"0 " + reason.encode() + b"\n1 stale reason\n")

        result = self.inst.postern("queue", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        # Control characters never reach the output raw.
        self.assertNotIn("\x01", result.stdout)
        self.assertNotIn("\t", result.stdout)
        entries = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(len(entries), 1)
        entry = entries[0]
        self.assertEqual(entry["queue_id"], self.QID_HOLD)
        self.assertEqual(entry["queue_name"], "hold")
        self.assertEqual(entry["size"], len(b"Subject: s\n\nbody\n"))
        self.assertEqual(entry["arrival_time"], 1700000000)
        self.assertEqual(entry["sender"], 'we "quote"@x.test')
        self.assertEqual(entry["recipients"], [
            {"address": "back\\slash@y.test", "status": "pending",
             "delay_reason": reason},
            {"address": "done@y.test", "status": "delivered", "delay_reason": None},
        ])

    def test_text_listing_markers_and_order(self):
        write_queue_file(self.inst, "deferred", self.QID_DEFERRED, "",
                         [("-", "late@y.test")], b"x\n", 1700000100.0)
        write_queue_file(self.inst, "hold", self.QID_HOLD, "a@x.test",
                         [("-", "john doe@y.test"), ("B", "gone@y.test")],
                         b"x" * 3000 + b"\n", 1700000000.0)
        with open(os.path.join(self.inst.queue_dir, "defer", self.QID_DEFERRED), "w") as f:
            f.write("0 connect to y.test: Connection refused\n")

        result = self.inst.postern("queue")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        deferred_line = [l for l in lines if l.startswith(self.QID_DEFERRED)]
        hold_line = [l for l in lines if l.startswith(self.QID_HOLD)]
        self.assertEqual(len(deferred_line), 1, result.stdout)
        self.assertEqual(len(hold_line), 1, result.stdout)
        self.assertTrue(hold_line[0].startswith(self.QID_HOLD + "!"), hold_line[0])
        self.assertTrue(deferred_line[0].startswith(self.QID_DEFERRED + " "))
        self.assertIn(" 3001 ", hold_line[0])
        self.assertTrue(deferred_line[0].endswith("<>"), deferred_line[0])
        # Pending recipients in external form; bounced ones are not listed.
        self.assertIn('"john doe"@y.test', result.stdout)
        self.assertNotIn("gone@y.test", result.stdout)
        self.assertIn("(connect to y.test: Connection refused)", result.stdout)
        self.assertEqual(lines[-1], "-- 3 Kbytes in 2 messages.")

    def test_corrupt_file_reported(self):
        path = os.path.join(self.inst.queue_dir, "deferred", self.QID_DEFERRED)
        with open(path, "wb") as f:
            f.write(b"POSTERN-QUEUE 1\nZ 000000000099 000000000001\nI x\n")
        result = self.inst.postern("queue")
        self.assertEqual(result.returncode, 1)
        self.assertIn(self.QID_DEFERRED, result.stderr)
        self.assertIn("line 2", result.stderr)
        result = self.inst.postern("cat", self.QID_DEFERRED)
        self.assertEqual(result.returncode, 1)
        self.assertIn("line 2", result.stderr)

    def test_cat_prints_envelope_and_message(self):
        message = b"Subject: hello\n\nline one\n.line two\n"
        write_queue_file(self.inst, "hold", self.QID_HOLD, "a@x.test",
                         [("-", "b@y.test"), ("D", "c@y.test"), ("B", "d@y.test")],
                         message, 1700000000.5)
        result = self.inst.postern("cat", self.QID_HOLD)
        self.assertEqual(result.returncode, 0, result.stderr)
        envelope, sep, body = result.stdout.partition("\n\n")
        self.assertEqual(sep, "\n\n")
        lines = envelope.splitlines()
        self.assertIn("queue_id: " + self.QID_HOLD, lines)
        self.assertIn("queue: hold", lines)
        self.assertIn("sender: a@x.test", lines)
        self.assertIn("recipient: b@y.test", lines)
        self.assertIn("recipient: c@y.test (delivered)", lines)
        self.assertIn("recipient: d@y.test (bounced)", lines)
        self.assertIn("client: client.test[192.0.2.9]", lines)
        self.assertIn("helo: helo.test", lines)
        self.assertIn("protocol: ESMTP", lines)
        self.assertTrue(any(l.startswith("arrival: ") and "1700000000.500000" in l
                            for l in lines), envelope)
        self.assertEqual(body.encode(), message)

    def test_cat_rejects_bad_queue_ids(self):
        for bad in ("../../etc/passwd", "0654321000000a0b0c0001", "123", ""):
            result = self.inst.postern("cat", bad)
            self.assertEqual(result.returncode, 2, bad)
            self.assertIn("invalid queue ID", result.stderr)
        result = self.inst.postern("cat", "0654321000000A0B0C00FF")
        self.assertEqual(result.returncode, 1)
        self.assertIn("not found", result.stderr)

    def test_flush_without_qmgr_names_socket(self):
        path = write_queue_file(self.inst, "deferred", self.QID_DEFERRED, "a@x.test",
                                [("-", "b@y.test")], b"x\n", 1700000000.0)
        later = time.time() + 3600
        os.utime(path, (later, later))
        result = self.inst.postern("flush")
        self.assertEqual(result.returncode, 1)
        self.assertIn(os.path.join(self.inst.queue_dir, "public/qmgr"), result.stderr)
        # The file is due now even though qmgr got no wake-up.
        self.assertLessEqual(os.stat(path).st_mtime, time.time() + 1)

    def test_usage_errors(self):
        self.assertEqual(self.inst.postern("queue", "--xml").returncode, 2)
        self.assertEqual(self.inst.postern("cat").returncode, 2)
        self.assertEqual(self.inst.postern("flush", "now").returncode, 2)


class DeferredRelayTest(unittest.TestCase):
    """A message relayed to a sink that replies 451 stays deferred."""

    def setUp(self):
        self.sink = SmtpSink()
        self.addCleanup(self.sink.close)
        self.sink.rcpt_reply = lambda rcpt: (
            "451 4.3.0 mailbox busy, try again later"
            if rcpt.startswith("dave@") else "250 2.1.5 Ok")
        self.inst = Instance(main_cf={
            "transport_maps": "inline:{ sink.test=smtp:[127.0.0.1]:%d }" % self.sink.port,
        })
        self.addCleanup(self.inst.stop)
        self.inst.start()

    def wait_deferred(self, timeout=15):
        deferred = os.path.join(self.inst.queue_dir, "deferred")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = [n for n in os.listdir(deferred) if not n.startswith(".")]
            if names:
                return names
            time.sleep(0.1)
        raise AssertionError("no deferred message after %s s; log:\n%s"
                             % (timeout, self.inst.log_text()[-3000:]))

    def test_queue_and_cat_show_deferred_message(self):
        before = int(time.time())
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=30,
                          source_address=("127.0.0.2", 0)) as client:
            client.sendmail("alice@example.test", ["dave@sink.test", "erin@sink.test"],
                            b"Subject: deferred\r\n\r\nhello\r\n")
        after = int(time.time())
        self.sink.wait_for(1, timeout=15)
        names = self.wait_deferred()
        self.assertEqual(len(names), 1)
        qid = names[0]

        entries = json_entries(self.inst)
        self.assertEqual(len(entries), 1)
        entry = entries[0]
        self.assertEqual(entry["queue_id"], qid)
        self.assertEqual(entry["queue_name"], "deferred")
        self.assertEqual(entry["sender"], "alice@example.test")
        self.assertGreaterEqual(entry["arrival_time"], before)
        self.assertLessEqual(entry["arrival_time"], after)
        self.assertGreater(entry["size"], len(b"Subject: deferred\n\nhello\n"))
        by_address = {r["address"]: r for r in entry["recipients"]}
        self.assertEqual(by_address["dave@sink.test"]["status"], "pending")
        self.assertIn("451", by_address["dave@sink.test"]["delay_reason"])
        self.assertIn("mailbox busy", by_address["dave@sink.test"]["delay_reason"])
        self.assertEqual(by_address["erin@sink.test"]["status"], "delivered")

        text = self.inst.postern("queue")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(qid, text.stdout)
        self.assertIn("dave@sink.test", text.stdout)
        self.assertNotIn("erin@sink.test", text.stdout)
        self.assertIn("mailbox busy", text.stdout)

        cat = self.inst.postern("cat", qid)
        self.assertEqual(cat.returncode, 0, cat.stderr)
        envelope, _, message = cat.stdout.partition("\n\n")
        lines = envelope.splitlines()
        self.assertIn("queue: deferred", lines)
        self.assertIn("sender: alice@example.test", lines)
        self.assertIn("recipient: dave@sink.test", lines)
        self.assertIn("recipient: erin@sink.test (delivered)", lines)
        self.assertIn("protocol: ESMTP", lines)
        self.assertTrue(any(l.startswith("client: ") and l.endswith("[127.0.0.2]")
                            for l in lines), envelope)
        self.assertTrue(message.startswith("Received: "), message)
        self.assertIn("\nSubject: deferred\n", message)
        self.assertTrue(message.endswith("\n\nhello\n"), message)
        self.assertEqual(len(message.encode()), entry["size"])


if __name__ == "__main__":
    unittest.main()
