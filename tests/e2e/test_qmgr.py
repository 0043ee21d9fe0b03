"""End-to-end tests of qmgr: wake-ups, delivery, deferral, bounces,
expiry, corrupt files and recovery after a crash.

The first group writes queue files straight into the queue (in the format
of lib/qfile.h) and needs only master, qmgr and local. The second group
sends real mail through smtpd and the smtp client to a test sink.
"""

import json
import os
import re
import smtplib
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance, SmtpSink, is_root  # noqa: E402

_qid_lock = threading.Lock()
_qid_counter = [0]


def new_qid(arrival):
    """A queue ID in the lib/qfile.h form: hex seconds, microseconds, PID
    and counter, 22 uppercase characters."""
    with _qid_lock:
        _qid_counter[0] += 1
        count = _qid_counter[0]
    sec = int(arrival)
    usec = int((arrival - sec) * 1e6)
    return "%09X%05X%04X%04X" % (sec, usec, os.getpid() & 0xFFFF,
                                 count & 0xFFFF)


def queue_file_bytes(qid, arrival, sender, rcpts, message):
    """A queue file: rcpts is a list of (status, address)."""
    env = "I %s\nT %d.%06d\nS %s\nA 127.0.0.1\nP ESMTP\n" % (
        qid, int(arrival), int((arrival - int(arrival)) * 1e6), sender)
    for status, addr in rcpts:
        env += "R %s %s\n" % (status, addr)
    env += "M\n"
    magic = "POSTERN-QUEUE 1\n"
    zrec_len = len("Z %012d %012d\n" % (0, 0))
    offset = len(magic) + zrec_len + len(env.encode())
    head = magic + "Z %012d %012d\n" % (offset, len(message)) + env
    return head.encode() + message


def inject(inst, sender, rcpts, message, subdir="incoming", arrival=None):
    """Write a queue file into subdir the way a writer commits one; return
    its queue ID. rcpts: addresses, or (status, address) pairs."""
    arrival = time.time() if arrival is None else arrival
    qid = new_qid(arrival)
    pairs = [r if isinstance(r, tuple) else ("-", r) for r in rcpts]
    data = queue_file_bytes(qid, arrival, sender, pairs, message)
    # Before start() the queue does not exist yet; master fixes the
    # modes and owners of directories it finds.
    for sub in ("incoming", subdir):
        os.makedirs(os.path.join(inst.queue_dir, sub), exist_ok=True)
    tmp = os.path.join(inst.queue_dir, "incoming", ".tmp." + qid)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if is_root():
        os.chown(tmp, inst.mail_uid, inst.mail_gid)
    os.rename(tmp, os.path.join(inst.queue_dir, subdir, qid))
    return qid


def wake(inst, line):
    """Send one wake-up line to public/qmgr."""
    path = os.path.join(inst.queue_dir, "public", "qmgr")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")


def wait_until(predicate, timeout, what, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %s s waiting for %s%s"
                         % (timeout, what, "; log:\n" + log()[-4000:] if log else ""))


def queue_entries(inst):
    out = inst.postern("queue", "--json")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


MESSAGE = (b"From: alice@example.test\nTo: bob@example.test\n"
           b"Subject: qmgr test\nMessage-ID: <qmgr-test-1@example.test>\n\n"
           b"body line\n")


class QmgrQueueFileTest(unittest.TestCase):
    """qmgr with master and local only; queue files are written directly."""

    def start(self, **main_cf):
        cf = {"queue_run_delay": "2s"}
        cf.update(main_cf)
        self.inst = Instance(main_cf=cf)
        self.addCleanup(self.inst.stop)
        self.inst.start()

    def active_and_incoming(self):
        return (os.listdir(os.path.join(self.inst.queue_dir, "active"))
                + [n for n in os.listdir(os.path.join(self.inst.queue_dir, "incoming"))
                   if not n.startswith(".")])

    def test_wakeup_delivers_and_removes(self):
        self.start()
        qid = inject(self.inst, "alice@example.test", ["bob@example.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        msgs = self.inst.wait_for_messages("bob", 1, timeout=10)
        self.assertIn(b"Subject: qmgr test\n", msgs[0])
        self.assertTrue(msgs[0].endswith(b"\n\nbody line\n"))
        wait_until(lambda: (qid + ": removed") in self.inst.log_text(), 10,
                   "the removal log line", self.inst.log_text)
        self.assertEqual(self.active_and_incoming(), [])
        log = self.inst.log_text()
        self.assertRegex(log, qid + r": to=<bob@example.test>, relay=local[^,]*, "
                         r"delay=[0-9.]+, dsn=2\.[0-9.]+, status=sent ")

    def test_scan_without_wakeup(self):
        # A lost wake-up only delays mail: the incoming/ safety scan runs
        # every few seconds.
        self.start(queue_run_delay="300s")
        inject(self.inst, "alice@example.test", ["bob@example.test"], MESSAGE)
        self.inst.wait_for_messages("bob", 1, timeout=12)

    def test_scan_wakeup_takes_all(self):
        self.start(queue_run_delay="300s")
        for _ in range(5):
            inject(self.inst, "alice@example.test", ["alice@example.test"], MESSAGE)
        wake(self.inst, "W")
        self.assertEqual(len(self.inst.wait_for_messages("alice", 5, timeout=10)), 5)

    def test_recipients_delivered_once_each(self):
        self.start()
        qid = inject(self.inst, "carol@elsewhere.test",
                     ["alice@example.test", "bob@example.test", "alice@example.test"],
                     MESSAGE)
        wake(self.inst, "W " + qid)
        self.inst.wait_for_messages("alice", 2, timeout=10)
        self.inst.wait_for_messages("bob", 1, timeout=10)
        time.sleep(0.5)
        self.assertEqual(len(self.inst.messages("alice")), 2)
        self.assertEqual(len(self.inst.messages("bob")), 1)

    def test_corrupt_file_moved_aside(self):
        self.start()
        qid = new_qid(time.time())
        path = os.path.join(self.inst.queue_dir, "incoming", qid)
        with open(path, "wb") as f:
            f.write(b"POSTERN-QUEUE 1\nthis is not a queue file\n")
        if is_root():
            os.chown(path, self.inst.mail_uid, self.inst.mail_gid)
        wake(self.inst, "W " + qid)
        corrupt = os.path.join(self.inst.queue_dir, "corrupt", qid)
        wait_until(lambda: os.path.exists(corrupt), 10, "the file in corrupt/",
                   self.inst.log_text)
        self.assertIn(qid + ": queue file is not well-formed", self.inst.log_text())

    def test_unreachable_transport_defers(self):
        self.start(transport_maps="inline:{ far.test=nosuch: }")
        qid = inject(self.inst, "alice@example.test", ["bob@far.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        deferred = os.path.join(self.inst.queue_dir, "deferred", qid)
        wait_until(lambda: os.path.exists(deferred), 10, "the file in deferred/",
                   self.inst.log_text)
        # Next retry = now + minimal_backoff_time (60 s in the harness).
        self.assertAlmostEqual(os.stat(deferred).st_mtime, time.time() + 60, delta=5)
        entries = queue_entries(self.inst)
        self.assertEqual(len(entries), 1)
        reason = entries[0]["recipients"][0]["delay_reason"]
        self.assertIn("delivery temporarily suspended: cannot connect to private/nosuch",
                      reason)

    def fake_agent(self, name, reply):
        """Listen on private/NAME in place of a delivery agent; reply(request
        bytes) returns the bytes to send back, or None to stay silent."""
        path = os.path.join(self.inst.queue_dir, "private", name)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        os.chmod(path, 0o666)
        server.listen(8)
        self.addCleanup(server.close)
        requests, held = [], []

        def serve():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                data = b""
                while not data.endswith(b"\n\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                requests.append(data)
                answer = reply(data)
                if answer is None:
                    held.append(conn)
                    continue
                conn.sendall(answer)
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        self.addCleanup(lambda: [c.close() for c in held])
        return requests

    def test_agent_request_and_reply(self):
        self.start(transport_maps="inline:{ far.test=fake:[192.0.2.1]:25 }")
        requests = self.fake_agent("fake", lambda req: b"result=0 sent 2.0.0 fake ok\n"
                                   b"result=1 defer 4.2.1 fake busy\n\n")
        qid = inject(self.inst, "alice@example.test", ["x@far.test", "y@far.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        deferred = os.path.join(self.inst.queue_dir, "deferred", qid)
        wait_until(lambda: os.path.exists(deferred), 10, "the file in deferred/",
                   self.inst.log_text)
        self.assertEqual(len(requests), 1)
        lines = requests[0].decode().splitlines()
        self.assertIn("queue_id=" + qid, lines)
        self.assertIn("queue_file=active/" + qid, lines)
        self.assertIn("sender=alice@example.test", lines)
        self.assertIn("transport=fake", lines)
        self.assertIn("nexthop=[192.0.2.1]:25", lines)
        self.assertIn("rcpt=0 x@far.test", lines)
        self.assertIn("rcpt=1 y@far.test", lines)
        recipients = queue_entries(self.inst)[0]["recipients"]
        # The fake agent does not mark x delivered in the file, so the
        # listing shows x pending without a reason and y with its reason.
        self.assertIsNone(recipients[0]["delay_reason"])
        self.assertEqual(recipients[1]["delay_reason"], "fake busy")
        self.assertRegex(self.inst.log_text(),
                         qid + r": to=<x@far.test>, relay=fake:\[192.0.2.1\]:25, "
                         r"delay=[0-9.]+, dsn=2.0.0, status=sent \(fake ok\)")

    def test_agent_silence_times_out(self):
        self.start(transport_maps="inline:{ far.test=fake: }", ipc_timeout="1s")
        self.fake_agent("fake", lambda req: None)
        qid = inject(self.inst, "alice@example.test", ["x@far.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        deferred = os.path.join(self.inst.queue_dir, "deferred", qid)
        wait_until(lambda: os.path.exists(deferred), 10, "the file in deferred/",
                   self.inst.log_text)
        reason = queue_entries(self.inst)[0]["recipients"][0]["delay_reason"]
        self.assertEqual(reason, "delivery temporarily suspended: "
                         "no reply from private/fake within 1 s")

    def test_agent_malformed_reply_defers(self):
        self.start(transport_maps="inline:{ far.test=fake: }")
        self.fake_agent("fake", lambda req: b"Not An Attribute\n\n")
        qid = inject(self.inst, "alice@example.test", ["x@far.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        deferred = os.path.join(self.inst.queue_dir, "deferred", qid)
        wait_until(lambda: os.path.exists(deferred), 10, "the file in deferred/",
                   self.inst.log_text)
        reason = queue_entries(self.inst)[0]["recipients"][0]["delay_reason"]
        self.assertIn("malformed reply from private/fake", reason)

    def test_expired_message_bounced(self):
        self.start(transport_maps="inline:{ far.test=nosuch: }",
                   maximal_queue_lifetime="60s")
        qid = inject(self.inst, "alice@example.test", ["bob@far.test"], MESSAGE,
                     arrival=time.time() - 120)
        wake(self.inst, "W " + qid)
        bounce = self.inst.wait_for_messages("alice", 1, timeout=10)[0]
        self.assertIn(b"Subject: Undelivered Mail Returned to Sender\n", bounce)
        self.assertIn(b"<bob@far.test>: 4.3.0 message expired", bounce)
        wait_until(lambda: (qid + ": removed") in self.inst.log_text(), 10,
                   "the removal", self.inst.log_text)

    def test_unknown_mailbox_bounced_to_sender(self):
        self.start()
        qid = inject(self.inst, "alice@example.test",
                     ["nobody@example.test", "bob@example.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        self.inst.wait_for_messages("bob", 1, timeout=10)
        bounce = self.inst.wait_for_messages("alice", 1, timeout=10)[0]
        self.assertIn(b"From: MAILER-DAEMON@mail.example.test", bounce)
        self.assertIn(b"Subject: Undelivered Mail Returned to Sender\n", bounce)
        self.assertRegex(bounce, rb"<nobody@example.test>: 5\.[0-9]+\.[0-9]+ ")
        self.assertNotIn(b"<bob@example.test>:", bounce)
        # The original message follows the report.
        self.assertIn(b"Subject: qmgr test\n",
                      bounce.split(b"Content-Type: message/rfc822\n")[1])
        wait_until(lambda: (qid + ": removed") in self.inst.log_text(), 10,
                   "the removal", self.inst.log_text)

    def test_null_sender_not_bounced(self):
        self.start()
        qid = inject(self.inst, "", ["nobody@example.test"], MESSAGE)
        wake(self.inst, "W " + qid)
        wait_until(lambda: (qid + ": removed") in self.inst.log_text(), 10,
                   "the removal", self.inst.log_text)
        self.assertIn(qid + ": no bounce for a message from the null sender",
                      self.inst.log_text())
        self.assertEqual(self.inst.messages("alice"), [])

    def test_active_files_recovered_on_start(self):
        # A file left in active/ by a crashed qmgr, with its first
        # recipient already delivered: only the second gets it.
        self.inst = Instance(main_cf={"queue_run_delay": "2s"})
        self.addCleanup(self.inst.stop)
        qid = inject(self.inst, "carol@elsewhere.test",
                     [("D", "alice@example.test"), ("-", "bob@example.test")],
                     MESSAGE, subdir="active")
        self.inst.start()
        self.inst.wait_for_messages("bob", 1, timeout=10)
        wait_until(lambda: (qid + ": removed") in self.inst.log_text(), 10,
                   "the removal", self.inst.log_text)
        self.assertEqual(self.inst.messages("alice"), [])

    def test_locked_active_file_waits(self):
        # A delivery agent of the previous qmgr still holds the file: the
        # new qmgr must not hand the recipient out until the lock is gone.
        import fcntl
        self.inst = Instance(main_cf={"queue_run_delay": "2s"})
        self.addCleanup(self.inst.stop)
        qid = inject(self.inst, "carol@elsewhere.test", ["bob@example.test"],
                     MESSAGE, subdir="active")
        path = os.path.join(self.inst.queue_dir, "active", qid)
        held = open(path, "rb")
        fcntl.flock(held, fcntl.LOCK_SH)
        try:
            self.inst.start()
            time.sleep(2)
            self.assertEqual(self.inst.messages("bob"), [])
            self.assertIn(qid + ": a delivery agent still holds the file",
                          self.inst.log_text())
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
            held.close()
        self.inst.wait_for_messages("bob", 1, timeout=10)

    def test_kill_qmgr_during_delivery(self):
        # kill -9 of qmgr twice while local delivers a backlog: every
        # message arrives exactly once.
        self.start(local_destination_concurrency_limit="4",
                   minimal_backoff_time="2s", maximal_backoff_time="4s")
        total = 300
        for i in range(total):
            msg = b"Subject: kill %d\nMessage-ID: <kill-%d@test>\n\nbody\n" % (i, i)
            inject(self.inst, "carol@elsewhere.test", ["alice@example.test"], msg)
        wake(self.inst, "W")
        for mark in (total // 5, total // 2):
            self.inst.wait_for_messages("alice", mark, timeout=30)
            pids = self.inst.wait_for_service("qmgr")
            for pid in pids:
                os.kill(pid, 9)
            wait_until(lambda: self.inst.service_pids().get("qmgr", []) not in ([], pids),
                       15, "a new qmgr", self.inst.log_text)
        self.inst.wait_for_messages("alice", total, timeout=60)
        time.sleep(1)
        ids = [re.search(rb"^Message-ID: <([^>]*)>", m, re.M).group(1)
               for m in self.inst.messages("alice")]
        self.assertEqual(len(ids), total)
        self.assertEqual(len(set(ids)), total)
        self.assertIn("from an earlier run", self.inst.log_text())

    def test_flush_retries_deferred(self):
        self.start()
        qid = inject(self.inst, "alice@example.test", ["bob@example.test"],
                     MESSAGE, subdir="deferred")
        later = time.time() + 3600
        os.utime(os.path.join(self.inst.queue_dir, "deferred", qid), (later, later))
        time.sleep(2.5)
        self.assertEqual(self.inst.messages("bob"), [])
        wake(self.inst, "F")
        self.inst.wait_for_messages("bob", 1, timeout=10)


def submit(port, sender, rcpts, message, source="127.0.0.2"):
    with smtplib.SMTP("127.0.0.1", port, timeout=30,
                      source_address=(source, 0)) as client:
        client.sendmail(sender, rcpts, message)


class QmgrRelayTest(unittest.TestCase):
    """Mail through smtpd and the smtp client to a test sink."""

    def setUp(self):
        self.sink = SmtpSink()
        self.addCleanup(self.sink.close)
        self.inst = Instance(main_cf={
            "queue_run_delay": "2s",
            "transport_maps": "inline:{ sink.test=smtp:[127.0.0.1]:%d }" % self.sink.port,
        })
        self.addCleanup(self.inst.stop)
        self.inst.start()

    def test_451_deferred_until_flush(self):
        self.sink.rcpt_reply = lambda rcpt: "451 4.3.0 try again later"
        submit(self.inst.smtp_port, "alice@example.test", ["dave@sink.test"],
               b"Subject: deferred\r\n\r\nhello\r\n")
        deferred = os.path.join(self.inst.queue_dir, "deferred")
        wait_until(lambda: os.listdir(deferred), 15, "a deferred message",
                   self.inst.log_text)
        entries = queue_entries(self.inst)
        self.assertEqual(len(entries), 1)
        self.assertIn("451", entries[0]["recipients"][0]["delay_reason"])
        self.assertIn("try again later", entries[0]["recipients"][0]["delay_reason"])

        self.sink.rcpt_reply = lambda rcpt: "250 2.1.5 Ok"
        self.assertEqual(self.inst.postern("flush").returncode, 0)
        got = self.sink.wait_for(1, timeout=15)
        self.assertEqual(got[0][1], ["dave@sink.test"])
        wait_until(lambda: queue_entries(self.inst) == [], 10, "an empty queue",
                   self.inst.log_text)

    def test_550_for_one_recipient_bounces_it(self):
        self.sink.rcpt_reply = lambda rcpt: (
            "550 5.1.1 no such user" if rcpt.startswith("gone@") else "250 2.1.5 Ok")
        submit(self.inst.smtp_port, "alice@example.test",
               ["gone@sink.test", "dave@sink.test"],
               b"Subject: half\r\n\r\nhello\r\n")
        got = self.sink.wait_for(1, timeout=15)
        self.assertEqual(got[0][1], ["dave@sink.test"])
        bounce = self.inst.wait_for_messages("alice", 1, timeout=15)[0]
        self.assertIn(b"Subject: Undelivered Mail Returned to Sender\n", bounce)
        self.assertIn(b"<gone@sink.test>: 5.1.1 ", bounce)
        self.assertIn(b"no such user", bounce)
        self.assertNotIn(b"<dave@sink.test>:", bounce)
        wait_until(lambda: queue_entries(self.inst) == [], 10, "an empty queue",
                   self.inst.log_text)


class QmgrCrashTest(unittest.TestCase):
    """kill -9 of smtpd and qmgr during a run of 500 messages."""

    TOTAL = 500
    THREADS = 4

    def test_kill_smtpd_and_qmgr_mid_run(self):
        inst = Instance(main_cf={"queue_run_delay": "2s",
                                 "minimal_backoff_time": "2s",
                                 "maximal_backoff_time": "4s",
                                 "local_destination_concurrency_limit": "4"})
        self.addCleanup(inst.stop)
        inst.start()

        accepted, attempted = set(), set()
        lock = threading.Lock()
        next_index = [0]

        def send_one(client, mid):
            msg = ("From: carol@elsewhere.test\r\nTo: alice@example.test\r\n"
                   "Subject: crash %s\r\nMessage-ID: <%s>\r\n\r\nbody\r\n" % (mid, mid))
            client.sendmail("carol@elsewhere.test", ["alice@example.test"], msg)

        def worker(tid):
            client, attempt = None, 0
            while True:
                with lock:
                    if next_index[0] >= self.TOTAL:
                        break
                    index = next_index[0]
                    next_index[0] += 1
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    # One Message-ID per attempt, so an attempt that was
                    # committed but never got its 250 is not a duplicate.
                    attempt += 1
                    mid = "crash-%d-%d-%d@test" % (index, tid, attempt)
                    with lock:
                        attempted.add(mid)
                    try:
                        if client is None:
                            client = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=20)
                        send_one(client, mid)
                        with lock:
                            accepted.add(mid)
                        break
                    except (smtplib.SMTPException, OSError):
                        try:
                            if client is not None:
                                client.close()
                        except OSError:
                            pass
                        client = None
                        time.sleep(0.1)
            if client is not None:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    pass

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(self.THREADS)]
        for t in threads:
            t.start()
        for mark in (self.TOTAL // 3, 2 * self.TOTAL // 3):
            wait_until(lambda: len(accepted) >= mark, 120, "%d accepted messages" % mark)
            pids = inst.service_pids()
            for program in ("smtpd", "qmgr"):
                self.assertTrue(pids.get(program), "no %s process to kill" % program)
                for pid in pids[program]:
                    os.kill(pid, 9)
            # master must start both again with new processes.
            for program in ("smtpd", "qmgr"):
                wait_until(lambda: set(inst.service_pids().get(program, []))
                           - set(pids[program]), 30, "a new %s process" % program)
        for t in threads:
            t.join(180)
        self.assertEqual(len(accepted), self.TOTAL)

        def delivered_ids():
            ids = []
            for msg in inst.messages("alice"):
                m = re.search(rb"^Message-ID: <([^>]*)>", msg, re.M | re.I)
                ids.append(m.group(1).decode() if m else None)
            return ids

        def all_in():
            return accepted <= set(delivered_ids())

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all_in():
            inst.postern("flush")
            time.sleep(1)
        ids = delivered_ids()
        missing = accepted - set(ids)
        self.assertEqual(missing, set(), "accepted but not delivered")
        time.sleep(1)
        ids = delivered_ids()
        dups = sorted({i for i in ids if ids.count(i) > 1})
        self.assertEqual(dups, [], "delivered more than once")
        self.assertNotIn(None, ids)
        self.assertTrue(set(ids) <= attempted)


if __name__ == "__main__":
    unittest.main()
