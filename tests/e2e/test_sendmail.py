"""Local submission end to end: sendmail, pickup, mailq and newaliases."""

import os
import pwd
import grp
import shutil
import socket
import subprocess
import time
import unittest

from harness import BUILD_DIR, Instance, SmtpSink, is_root

SENDMAIL = os.path.join(BUILD_DIR, "cli", "sendmail", "sendmail")


def body_after_blank(message):
    """Return the bytes after the first empty line of a message."""
    return message.split(b"\n\n", 1)[1]


def header_lines(message):
    return message.split(b"\n\n", 1)[0].split(b"\n")


class SendmailTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance()
        cls.inst.start()
        cls.inst.wait_for_service("pickup")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()

    def sendmail(self, args, data, program=SENDMAIL):
        return subprocess.run([program, "-C", self.inst.config_dir] + args,
                              input=data, capture_output=True, timeout=30)

    def count(self, user):
        return len(self.inst.messages(user))

    def wait_for_message_with(self, user, needle, timeout=20):
        """The newest message of user that contains needle, once it arrives.

        Another test's message may reach the same Maildir late, so the
        newest file is not necessarily the one a test just sent.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.inst.messages(user) if needle in m]
            if found:
                return found[-1]
            self.assertLess(time.monotonic(), deadline,
                            "no message with %r for %s" % (needle, user))
            time.sleep(0.05)

    def test_t_extracts_rcpts_and_removes_bcc(self):
        body = b"first line\n..two dots stay\n\xc3\xa9 8-bit\n"
        data = (b"Subject: extract\nTo: Alice <alice@example.test>\n"
                b"Bcc: bob@example.test\nFrom: Me <me@example.test>\n"
                b"Date: Mon, 02 Jun 2025 10:00:00 +0000\n"
                b"Message-ID: <t1@example.test>\n\n" + body)
        r = self.sendmail(["-t"], data)
        self.assertEqual(r.returncode, 0, r.stderr)
        got_a = self.wait_for_message_with("alice", b"<t1@example.test>")
        got_b = self.wait_for_message_with("bob", b"<t1@example.test>")
        for got in (got_a, got_b):
            self.assertEqual(body_after_blank(got), body)
            self.assertNotIn(b"Bcc:", got)
            self.assertIn(b"\nTo: Alice <alice@example.test>\n", got)
            # Nothing is added to a message that has all three fields.
            self.assertEqual(got.count(b"\nMessage-ID:"), 1)
            self.assertEqual(got.count(b"\nDate:"), 1)
            self.assertIn(b"(Postern, from userid %d)" % os.getuid(), got)

    def test_f_sender_and_added_headers(self):
        before = self.count("alice")
        body = b"line one\r\n.leading dot\r\nlast line without newline"
        data = b"Subject: with -f\r\n\r\n" + body
        r = self.sendmail(["-f", "x@y.test", "-F", "Test User",
                           "alice@example.test"], data)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.inst.wait_for_messages("alice", before + 1)[-1]
        self.assertTrue(got.startswith(b"Return-Path: <x@y.test>\n"), got[:200])
        self.assertEqual(body_after_blank(got),
                         body.replace(b"\r\n", b"\n") + b"\n")
        headers = header_lines(got)
        self.assertIn(b"Subject: with -f", headers)
        self.assertIn(b"From: Test User <x@y.test>", headers)
        self.assertEqual(sum(h.startswith(b"Date: ") for h in headers), 1)
        self.assertEqual(sum(h.startswith(b"Message-ID: <") for h in headers), 1)

    def test_lone_dot_with_and_without_i(self):
        before = self.count("bob")
        data = b"Subject: dots\n\nbefore\n.\nafter\n"
        r = self.sendmail(["-i", "bob@example.test"], data)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.inst.wait_for_messages("bob", before + 1)[-1]
        self.assertEqual(body_after_blank(got), b"before\n.\nafter\n")

        r = self.sendmail(["bob@example.test"], data)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.inst.wait_for_messages("bob", before + 2)[-1]
        self.assertEqual(body_after_blank(got), b"before\n")

    def test_no_recipients_and_bad_options(self):
        r = self.sendmail([], b"Subject: x\n\nbody\n")
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"no recipients", r.stderr)
        r = self.sendmail(["-bs"], b"")
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"-bs", r.stderr)
        r = self.sendmail(["-Z", "-t"], b"To: alice@example.test\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"warning: unknown option -Z ignored", r.stderr)

    def test_size_limit(self):
        big = b"Subject: big\n\n" + b"x" * 1000 + b"\n"
        inst = self.inst
        inst.main_cf["message_size_limit"] = "500"
        inst.write_main_cf()
        try:
            r = self.sendmail(["alice@example.test"], big)
        finally:
            del inst.main_cf["message_size_limit"]
            inst.write_main_cf()
        self.assertEqual(r.returncode, 65)
        self.assertIn(b"message_size_limit", r.stderr)
        maildrop = os.path.join(inst.queue_dir, "maildrop")
        self.assertEqual([n for n in os.listdir(maildrop)], [])

    def wake_pickup(self):
        path = os.path.join(self.inst.queue_dir, "public", "pickup")
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b"W\n")

    def wait_for_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.inst.log_text():
                return True
            time.sleep(0.05)
        return False

    def test_malformed_maildrop_file_moved_aside(self):
        maildrop = os.path.join(self.inst.queue_dir, "maildrop")
        corrupt = os.path.join(self.inst.queue_dir, "corrupt")
        cases = {
            "06B1339679000000000001": b"garbage\n",
            "06B1339679000000000002": b"POSTERN-MAILDROP 1\nR a@b.test\nM\nx\n",
            "06B1339679000000000003": (b"POSTERN-MAILDROP 1\nS a@b.test\n"
                                       b"R not an address\nM\nx\n"),
            "06B1339679000000000004": b"POSTERN-MAILDROP 1\nS a@b.test\nM\n",
            "06B1339679000000000005": b"POSTERN-MAILDROP 1\nS " + b"a" * 2000,
            "not-a-queue-id": (b"POSTERN-MAILDROP 1\nS a@b.test\n"
                               b"R alice@example.test\nM\nx\n"),
        }
        before = set(os.listdir(corrupt))

        for name, data in cases.items():
            with open(os.path.join(maildrop, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(maildrop, name), 0o604)
        self.wake_pickup()

        for name in cases:
            self.assertTrue(
                self.wait_for_log("maildrop/%s from uid %d: " % (name, os.getuid())),
                "no log line for %s" % name)
        self.assertEqual(os.listdir(maildrop), [])

        moved = set(os.listdir(corrupt)) - before
        self.assertEqual(len(moved), len(cases))
        contents = set()
        for name in moved:
            with open(os.path.join(corrupt, name), "rb") as f:
                contents.add(f.read())
        self.assertEqual(contents, set(cases.values()))

    def test_mailq_lists_deferred_message(self):
        sink = SmtpSink()
        sink.rcpt_reply = lambda rcpt: "451 4.3.0 try again later"
        inst = Instance(main_cf={"relayhost": "[127.0.0.1]:%d" % sink.port})
        try:
            inst.start()
            inst.wait_for_service("pickup")
            r = subprocess.run([SENDMAIL, "-C", inst.config_dir,
                                "remote@elsewhere.test"],
                               input=b"Subject: later\n\nbody\n",
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            mailq = os.path.join(inst.dir, "mailq")
            os.symlink(SENDMAIL, mailq)
            deadline = time.monotonic() + 20
            out = ""
            while time.monotonic() < deadline:
                q = subprocess.run([mailq, "-C", inst.config_dir],
                                   capture_output=True, text=True, timeout=30)
                out = q.stdout
                if "try again later" in out:
                    break
                time.sleep(0.2)
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertIn("remote@elsewhere.test", out)
            self.assertIn("451 4.3.0 try again later", out)
            self.assertIn("-- 1 Kbytes in 1 message.", out)
        finally:
            inst.stop()
            sink.close()

    def test_newaliases_builds_alias_db(self):
        aliases = os.path.join(self.inst.dir, "aliases")
        with open(aliases, "w") as f:
            f.write("postmaster: alice@example.test\nteam: alice, bob\n")
        newaliases = os.path.join(self.inst.dir, "newaliases")
        if not os.path.exists(newaliases):
            os.symlink(SENDMAIL, newaliases)
        self.inst.main_cf["alias_maps"] = "inline:{ x=y }, hash:%s" % aliases
        self.inst.write_main_cf()
        try:
            r = subprocess.run([newaliases, "-C", self.inst.config_dir],
                               capture_output=True, timeout=30)
        finally:
            self.inst.main_cf["alias_maps"] = ""
            self.inst.write_main_cf()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(aliases + ".db"))
        q = self.inst.postern("map", "-q", "team", "hash:" + aliases)
        self.assertEqual(q.stdout.strip(), "alice, bob")


class SendmailUnprivilegedTest(unittest.TestCase):
    """As root: a local user submits through a set-group-id sendmail."""

    def setUp(self):
        if not is_root():
            self.skipTest("needs root to switch users and set the group")
        try:
            self.gid = grp.getgrnam("postdrop").gr_gid
            self.user = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("needs the postdrop group and the nobody user")
        if shutil.which("setpriv") is None:
            self.skipTest("needs setpriv")
        # Only root may send as another user; nobody gets its own address.
        self.inst = Instance(main_cf={"local_login_sender_maps":
                                      "inline:{ root=* }"})
        self.inst.start()
        self.inst.wait_for_service("pickup")
        self.sendmail = os.path.join(self.inst.dir, "sendmail")
        shutil.copy(SENDMAIL, self.sendmail)
        os.chown(self.sendmail, 0, self.gid)
        os.chmod(self.sendmail, 0o2755)

    def tearDown(self):
        self.inst.stop()

    def as_nobody(self, args, data=None):
        return subprocess.run(
            ["setpriv", "--reuid=%d" % self.user.pw_uid,
             "--regid=%d" % self.user.pw_gid, "--clear-groups"] + args,
            input=data, capture_output=True, timeout=30)

    def test_user_submits_but_cannot_read_queue(self):
        maildrop = os.path.join(self.inst.queue_dir, "maildrop")
        st = os.stat(maildrop)
        self.assertEqual(st.st_mode & 0o7777, 0o1730)
        self.assertEqual(st.st_gid, self.gid)

        r = self.as_nobody([self.sendmail, "-C", self.inst.config_dir,
                            "-f", "ceo@example.test", "alice@example.test"],
                           b"Subject: from nobody\n\nhello\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.inst.wait_for_messages("alice", 1)[0]
        self.assertEqual(body_after_blank(got), b"hello\n")
        self.assertTrue(got.startswith(
            b"Return-Path: <nobody@mail.example.test>\n"), got[:200])
        self.assertIn(b"(Postern, from userid %d)" % self.user.pw_uid, got)
        self.assertIn("may not use sender <ceo@example.test>",
                      self.inst.log_text())

        for path in (maildrop, os.path.join(self.inst.queue_dir, "incoming"),
                     os.path.join(self.inst.queue_dir, "deferred")):
            r = self.as_nobody(["ls", path])
            self.assertNotEqual(r.returncode, 0, path)
            self.assertIn(b"Permission denied", r.stderr)
        # Even with the postdrop group, maildrop/ cannot be listed.
        r = subprocess.run(
            ["setpriv", "--reuid=%d" % self.user.pw_uid,
             "--regid=%d" % self.gid, "--clear-groups", "ls", maildrop],
            capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
