"""End-to-end test of local delivery to a system user (needs root).

A temporary system user gets mail at user@localhost (mydestination)
into ~/Maildir/ through home_mailbox; the files belong to that user.
The user is removed again after the test.
"""

import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import Instance


class SystemUserMaildirTest(unittest.TestCase):

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("delivery to a system user needs root")
        if shutil.which("useradd") is None or shutil.which("userdel") is None:
            self.skipTest("useradd and userdel are not installed")
        self.home_parent = tempfile.mkdtemp(prefix="postern-home-")
        os.chmod(self.home_parent, 0o755)
        self.addCleanup(shutil.rmtree, self.home_parent, True)
        self.user = "pt%d" % os.getpid()
        self.home = os.path.join(self.home_parent, self.user)
        subprocess.run(["useradd", "--system", "--create-home", "--home-dir", self.home,
                        "--shell", "/usr/sbin/nologin", self.user],
                       check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["userdel", self.user], capture_output=True)
        self.pw = pwd.getpwnam(self.user)
        self.inst = Instance(main_cf={"home_mailbox": "Maildir/"})
        self.addCleanup(self.inst.stop)
        self.inst.start()

    def test_home_maildir_delivery(self):
        rcpt = "%s@localhost" % self.user
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=30) as client:
            refused = client.sendmail("carol@elsewhere.test", [rcpt],
                                      b"Subject: home\r\n\r\nto a system user\r\n")
        self.assertEqual(refused, {})

        maildir = os.path.join(self.home, "Maildir")
        new_dir = os.path.join(maildir, "new")
        names = []
        deadline = time.monotonic() + 20
        while not names and time.monotonic() < deadline:
            try:
                names = os.listdir(new_dir)
            except FileNotFoundError:
                names = []
            if not names:
                time.sleep(0.1)
        self.assertEqual(len(names), 1, self.inst.log_text()[-2000:])

        path = os.path.join(new_dir, names[0])
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"Return-Path: <carol@elsewhere.test>\n"
                                        b"Delivered-To: %s\n" % rcpt.encode()), data[:200])
        self.assertTrue(data.endswith(b"\nSubject: home\n\nto a system user\n"), data[-200:])
        for checked in (maildir, new_dir, path):
            st = os.stat(checked)
            self.assertEqual((st.st_uid, st.st_gid), (self.pw.pw_uid, self.pw.pw_gid),
                             checked)


if __name__ == "__main__":
    unittest.main()
