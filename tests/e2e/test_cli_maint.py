"""End-to-end tests of `postern delete`, `hold`, `release` and `requeue`.

The first group works on queue files that the test writes itself (in
the format of lib/qfile.h) with no instance running, which also allows
a file in active/ that no qmgr owns. The second group defers real mail
at a test sink that replies 451 and then changes its queue.
"""

import json
import os
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import POSTERN_CLI, Instance, SmtpSink  # noqa: E402

QUEUES = ("incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce")

QID_INCOMING = "0654321000000A0B0C0001"
QID_DEFERRED = "0654321000000A0B0C0002"
QID_HOLD = "0654321000000A0B0C0003"
QID_ACTIVE = "0654321000000A0B0C0004"
QID_ABSENT = "0654321000000A0B0C00FF"


def queue_file(qid, sender, rcpt, message):
    """Bytes of a queue file with one pending recipient."""
    env = ("I %s\nT 1700000000.000000\nS %s\nC client.test\nA 192.0.2.9\n"
           "H helo.test\nP ESMTP\nR - %s\nM\n" % (qid, sender, rcpt))
    magic = "POSTERN-QUEUE 1\n"
    offset = len(magic) + len("Z %012d %012d\n" % (0, 0)) + len(env.encode())
    head = magic + "Z %012d %012d\n" % (offset, len(message)) + env
    return head.encode() + message


def where(inst, qid):
    """The queue directories that contain qid."""
    return [q for q in ("incoming", "active", "deferred", "hold", "corrupt")
            if os.path.exists(os.path.join(inst.queue_dir, q, qid))]


class MaintFilesTest(unittest.TestCase):
    """Queue changes on hand-written files, no processes running."""

    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.stop)
        for sub in QUEUES:
            os.makedirs(os.path.join(self.inst.queue_dir, sub))
        self.put("incoming", QID_INCOMING)
        self.put("deferred", QID_DEFERRED)
        self.put("hold", QID_HOLD)
        self.put("active", QID_ACTIVE)

    def put(self, queue, qid):
        path = os.path.join(self.inst.queue_dir, queue, qid)
        with open(path, "wb") as f:
            f.write(queue_file(qid, "a@x.test", "b@y.test", b"Subject: s\n\nbody\n"))
        for side in ("defer", "bounce"):
            with open(os.path.join(self.inst.queue_dir, side, qid), "w") as f:
                f.write("0 451 4.3.0 busy\n" if side == "defer" else "")
        return path

    def side_files(self, qid):
        return [s for s in ("defer", "bounce")
                if os.path.exists(os.path.join(self.inst.queue_dir, s, qid))]

    def test_delete_removes_file_and_side_files(self):
        result = self.inst.postern("delete", QID_DEFERRED, QID_HOLD)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(),
                         [QID_DEFERRED + ": removed", QID_HOLD + ": removed"])
        self.assertEqual(where(self.inst, QID_DEFERRED), [])
        self.assertEqual(where(self.inst, QID_HOLD), [])
        self.assertEqual(self.side_files(QID_DEFERRED), [])
        self.assertEqual(self.side_files(QID_HOLD), [])
        self.assertEqual(where(self.inst, QID_INCOMING), ["incoming"])
        log = self.inst.log_text()
        self.assertIn(QID_DEFERRED + ": removed by the operator", log)
        self.assertIn(QID_HOLD + ": removed by the operator", log)

    def test_delete_all_spares_active(self):
        result = self.inst.postern("delete", "ALL")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(result.stdout.splitlines()), 3, result.stdout)
        for qid in (QID_INCOMING, QID_DEFERRED, QID_HOLD):
            self.assertEqual(where(self.inst, qid), [], qid)
        self.assertEqual(where(self.inst, QID_ACTIVE), ["active"])
        self.assertEqual(self.side_files(QID_ACTIVE), ["defer", "bounce"])

    def test_delete_deferred_keyword(self):
        result = self.inst.postern("delete", "deferred")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [QID_DEFERRED + ": removed"])
        self.assertEqual(where(self.inst, QID_HOLD), ["hold"])
        self.assertEqual(where(self.inst, QID_INCOMING), ["incoming"])
        self.assertEqual(self.inst.postern("delete", "deferred", QID_HOLD).returncode, 2)

    def test_delete_reads_ids_from_stdin(self):
        result = subprocess.run(
            [POSTERN_CLI, "-c", self.inst.config_dir, "delete", "-"],
            input="%s\n  %s %s\n" % (QID_HOLD, QID_INCOMING, QID_HOLD),
            capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        # Sorted by queue ID, and a repeated ID is handled once.
        self.assertEqual(result.stdout.splitlines(),
                         [QID_INCOMING + ": removed", QID_HOLD + ": removed"])
        self.assertEqual(where(self.inst, QID_DEFERRED), ["deferred"])

    def test_invalid_ids_change_nothing(self):
        for command in ("delete", "hold", "release", "requeue"):
            for bad in ("../../etc/passwd", "0654321000000a0b0c0002", "123", ""):
                result = self.inst.postern(command, QID_DEFERRED, bad)
                self.assertEqual(result.returncode, 2, (command, bad))
                self.assertIn("invalid queue ID", result.stderr)
                self.assertIn("nothing changed", result.stderr)
                self.assertEqual(result.stdout, "")
        self.assertEqual(where(self.inst, QID_DEFERRED), ["deferred"])
        self.assertEqual(where(self.inst, QID_HOLD), ["hold"])

    def test_usage_errors(self):
        for command in ("delete", "hold", "release", "requeue"):
            result = self.inst.postern(command)
            self.assertEqual(result.returncode, 2, command)
            self.assertIn("usage: postern " + command, result.stderr)

    def test_active_file_rejected(self):
        for command in ("delete", "hold", "release", "requeue"):
            result = self.inst.postern(command, QID_ACTIVE)
            self.assertEqual(result.returncode, 1, command)
            self.assertIn("%s is being delivered; try again in a moment" % QID_ACTIVE,
                          result.stderr)
        self.assertEqual(where(self.inst, QID_ACTIVE), ["active"])
        self.assertEqual(self.side_files(QID_ACTIVE), ["defer", "bounce"])

    def test_rejected_id_does_not_stop_others(self):
        result = self.inst.postern("hold", QID_ACTIVE, QID_DEFERRED)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout.splitlines(), [QID_DEFERRED + ": on hold"])
        self.assertEqual(where(self.inst, QID_DEFERRED), ["hold"])

    def test_unknown_id_not_found(self):
        result = self.inst.postern("delete", QID_ABSENT)
        self.assertEqual(result.returncode, 1)
        self.assertIn("queue ID %s not found" % QID_ABSENT, result.stderr)

    def test_hold_all_then_release_all(self):
        result = self.inst.postern("hold", "ALL")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(),
                         [QID_INCOMING + ": on hold", QID_DEFERRED + ": on hold"])
        for qid in (QID_INCOMING, QID_DEFERRED, QID_HOLD):
            self.assertEqual(where(self.inst, qid), ["hold"], qid)
        self.assertEqual(where(self.inst, QID_ACTIVE), ["active"])
        # The deferral reason stays for the listing.
        self.assertEqual(self.side_files(QID_DEFERRED), ["defer", "bounce"])
        self.assertIn(QID_DEFERRED + ": put on hold by the operator", self.inst.log_text())
        again = self.inst.postern("hold", QID_HOLD)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout.strip(), QID_HOLD + ": already on hold")

        # A file held for an hour becomes due now when released.
        hold_path = os.path.join(self.inst.queue_dir, "hold", QID_HOLD)
        os.utime(hold_path, (time.time() - 3600, time.time() - 3600))
        before = time.time()
        result = self.inst.postern("release", "ALL")
        # No qmgr runs, so the wake-up fails but the messages are moved.
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("failed to wake qmgr", result.stderr)
        self.assertEqual(len(result.stdout.splitlines()), 3, result.stdout)
        for qid in (QID_INCOMING, QID_DEFERRED, QID_HOLD):
            self.assertEqual(where(self.inst, qid), ["deferred"], qid)
        mtime = os.stat(os.path.join(self.inst.queue_dir, "deferred", QID_HOLD)).st_mtime
        self.assertGreaterEqual(mtime, before - 1)
        self.assertIn(QID_HOLD + ": released from hold by the operator", self.inst.log_text())

    def test_release_not_held(self):
        result = self.inst.postern("release", QID_DEFERRED)
        self.assertEqual(result.returncode, 1)
        self.assertIn("%s is in deferred/" % QID_DEFERRED, result.stderr)
        self.assertEqual(where(self.inst, QID_DEFERRED), ["deferred"])

    def test_requeue_all_and_named(self):
        result = self.inst.postern("requeue", "ALL")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [QID_DEFERRED + ": requeued"])
        self.assertEqual(where(self.inst, QID_DEFERRED), ["incoming"])
        # ALL leaves held mail on hold, but a named ID leaves hold/ too.
        self.assertEqual(where(self.inst, QID_HOLD), ["hold"])
        result = self.inst.postern("requeue", QID_HOLD, QID_INCOMING)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(),
                         [QID_INCOMING + ": already in incoming/",
                          QID_HOLD + ": requeued"])
        self.assertEqual(where(self.inst, QID_HOLD), ["incoming"])
        self.assertIn(QID_HOLD + ": requeued by the operator", self.inst.log_text())

    def test_move_never_replaces_a_file(self):
        self.put("hold", QID_DEFERRED)
        result = self.inst.postern("hold", QID_DEFERRED)
        self.assertEqual(result.returncode, 1)
        self.assertIn("already in the destination queue", result.stderr)
        self.assertEqual(where(self.inst, QID_DEFERRED), ["deferred", "hold"])

    def test_other_users_rejected(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run the command as another user")

        def as_nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

        for command in ("delete", "hold", "release", "requeue"):
            result = subprocess.run(
                [POSTERN_CLI, "-c", self.inst.config_dir, command, QID_DEFERRED],
                capture_output=True, text=True, timeout=30, preexec_fn=as_nobody)
            self.assertEqual(result.returncode, 1, command)
            self.assertIn("permission denied", result.stderr)
            self.assertIn('mail_owner user "%s"' % self.inst.mail_owner, result.stderr)
        self.assertEqual(where(self.inst, QID_DEFERRED), ["deferred"])


def send_relayed(inst, rcpts, subject):
    """Relay one message from inside mynetworks through inst."""
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=30,
                      source_address=("127.0.0.2", 0)) as client:
        client.sendmail("alice@example.test", rcpts,
                        ("Subject: %s\r\n\r\nhello\r\n" % subject).encode())


def wait_in_queue(inst, queue, timeout=15):
    """Wait for one queue file in inst's queue and return its ID."""
    path = os.path.join(inst.queue_dir, queue)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [n for n in os.listdir(path) if not n.startswith(".")]
        if names:
            return names[0]
        time.sleep(0.05)
    raise AssertionError("no message in %s/ after %s s; log:\n%s"
                         % (queue, timeout, inst.log_text()[-3000:]))


def wait_for_log(inst, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in inst.log_text():
        if time.monotonic() >= deadline:
            raise AssertionError("%r not logged after %s s; log:\n%s"
                                 % (text, timeout, inst.log_text()[-3000:]))
        time.sleep(0.05)


class MaintLiveTest(unittest.TestCase):
    """Queue changes on mail that qmgr deferred at a sink replying 451."""

    def setUp(self):
        self.sink = SmtpSink()
        self.addCleanup(self.sink.close)
        self.sink.rcpt_reply = lambda rcpt: "451 4.3.0 mailbox busy"
        self.inst = Instance(main_cf={
            "transport_maps": "inline:{ sink.test=smtp:[127.0.0.1]:%d }" % self.sink.port,
        })
        self.addCleanup(self.inst.stop)
        self.inst.start()
        send_relayed(self.inst, ["dave@sink.test"], "maint")
        self.qid = wait_in_queue(self.inst, "deferred")

    def queue_entries(self):
        result = self.inst.postern("queue", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def test_hold_survives_flush_until_release(self):
        result = self.inst.postern("hold", self.qid)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), self.qid + ": on hold")
        entries = self.queue_entries()
        self.assertEqual([(e["queue_id"], e["queue_name"]) for e in entries],
                         [(self.qid, "hold")])
        self.assertIn(self.qid + "!", self.inst.postern("queue").stdout)

        self.sink.rcpt_reply = lambda rcpt: "250 2.1.5 Ok"
        attempts = self.sink.connections
        flush = self.inst.postern("flush")
        self.assertEqual(flush.returncode, 0, flush.stderr)
        wait_for_log(self.inst, "flush requested")
        time.sleep(0.5)
        self.assertEqual(self.sink.messages, [])
        self.assertEqual(self.sink.connections, attempts)
        self.assertEqual(where(self.inst, self.qid), ["hold"])

        result = self.inst.postern("release", self.qid)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        messages = self.sink.wait_for(1, timeout=15)
        self.assertEqual(messages[0][1], ["dave@sink.test"])
        self.assertIn(b"Subject: maint", messages[0][2])

    def test_delete_deferred_message(self):
        result = self.inst.postern("delete", self.qid)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.queue_entries(), [])
        self.assertEqual(where(self.inst, self.qid), [])
        self.assertFalse(os.path.exists(os.path.join(self.inst.queue_dir, "defer", self.qid)))
        self.assertIn(self.qid + ": removed by the operator", self.inst.log_text())

        # Neither a late delivery nor a bounce to the sender follows.
        self.sink.rcpt_reply = lambda rcpt: "250 2.1.5 Ok"
        self.assertEqual(self.inst.postern("flush").returncode, 0)
        wait_for_log(self.inst, "flush requested")
        time.sleep(0.5)
        self.assertEqual(self.sink.messages, [])
        self.assertEqual(self.inst.messages("alice"), [])
        self.assertEqual(self.queue_entries(), [])

    def test_requeue_after_transport_change(self):
        second = SmtpSink()
        self.addCleanup(second.close)
        self.inst.main_cf["transport_maps"] = (
            "inline:{ sink.test=smtp:[127.0.0.1]:%d }" % second.port)
        self.inst.write_main_cf()
        old_qmgr = set(self.inst.service_pids().get("qmgr", []))
        reload = self.inst.postern("reload")
        self.assertEqual(reload.returncode, 0, reload.stderr)
        # A qmgr with the old transport_maps would defer the message again.
        deadline = time.monotonic() + 15
        while old_qmgr & set(self.inst.service_pids().get("qmgr", [])) \
                or not self.inst.service_pids().get("qmgr"):
            self.assertLess(time.monotonic(), deadline, "qmgr was not replaced")
            time.sleep(0.05)

        result = self.inst.postern("requeue", self.qid)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), self.qid + ": requeued")
        messages = second.wait_for(1, timeout=15)
        self.assertEqual(messages[0][1], ["dave@sink.test"])
        self.assertEqual(self.sink.messages, [])


if __name__ == "__main__":
    unittest.main()
