"""End-to-end tests of LMTP mode in the smtp agent against a real Dovecot.

Each test runs its own Dovecot (dovecot -F with a dovecot.conf in a
temporary directory) that speaks LMTP on a UNIX socket and on
127.0.0.1, and a Postern instance whose master.cf runs the smtp program
under the service name "lmtp". Dovecot stores mail in
DIR/maildirs/DOMAIN/USER (Maildir).
"""

import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, MAIL_OWNER_WHEN_ROOT, Instance, is_root  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
PORT_RANGE = range(44500, 45000)

# The master.cf line of docs/operating.md: the smtp program under the
# service name "lmtp" speaks LMTP.
LMTP_MASTER_CF = "lmtp unix - - n - - smtp\n"


def free_port_in_range():
    """A free TCP port on 127.0.0.1 from this test's range."""
    for port in PORT_RANGE:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in %d..%d" % (PORT_RANGE[0], PORT_RANGE[-1]))


class Dovecot:
    """A Dovecot LMTP server in its own directory, run as a child process.

    users: local parts in example.test for Dovecot's user database; every
    other address gets Dovecot's 550 reply to RCPT.
    """

    def __init__(self, users):
        self.dir = tempfile.mkdtemp(prefix="postern-dovecot-")
        # The lmtp agent runs as mail_owner and must reach the socket.
        os.chmod(self.dir, 0o755)
        self.base_dir = os.path.join(self.dir, "run")
        self.socket_path = os.path.join(self.dir, "lmtp")
        self.mail_dir = os.path.join(self.dir, "maildirs")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.port = free_port_in_range()
        self.proc = None
        # Dovecot refuses deliveries as uid 0, so as root mail belongs
        # to mail_owner, as it would in Postern's own mailboxes.
        if is_root():
            pw = pwd.getpwnam(MAIL_OWNER_WHEN_ROOT)
        else:
            pw = pwd.getpwuid(os.getuid())
        self.uid, self.gid, self.user_name = pw.pw_uid, pw.pw_gid, pw.pw_name
        os.makedirs(self.mail_dir)
        if is_root():
            os.chown(self.mail_dir, self.uid, self.gid)
        self._write_users(users)
        self._write_conf()

    def _write_users(self, users):
        self.users_path = os.path.join(self.dir, "users")
        with open(self.users_path, "w") as f:
            for user in users:
                f.write("%s@example.test:{PLAIN}unused:%d:%d::%s::\n"
                        % (user, self.uid, self.gid,
                           os.path.join(self.mail_dir, "example.test", user)))

    def _write_conf(self):
        internal = "" if is_root() else (
            "default_internal_user = %s\ndefault_login_user = %s\n"
            % (self.user_name, self.user_name))
        conf = """\
base_dir = {base}
state_dir = {dir}/state
log_path = {log}
info_log_path = {log}
protocols = lmtp
listen = 127.0.0.1
ssl = no
{internal}first_valid_uid = 1
mail_location = maildir:{mail}/%d/%n
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service lmtp {{
  unix_listener {socket} {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
""".format(base=self.base_dir, dir=self.dir, log=self.log_path,
           internal=internal, mail=self.mail_dir, users=self.users_path,
           socket=self.socket_path, port=self.port)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def start(self, timeout=15):
        """Run dovecot -F and wait until the socket greets with 220."""
        out = open(os.path.join(self.dir, "dovecot.out"), "ab")
        self.proc = subprocess.Popen(
            [DOVECOT, "-c", self.conf_path, "-F"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._greets():
                return self
            time.sleep(0.05)
        output = self.output()
        self.stop()
        raise RuntimeError("dovecot did not start; output and log:\n%s" % output)

    def _greets(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket_path)
                return s.recv(100).startswith(b"220 ")
        except OSError:
            return False

    def output(self):
        text = ""
        for name in ("dovecot.out", "dovecot.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text[-4000:]

    def stop(self):
        """Stop dovecot by PID and wait until it has removed its socket."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self):
        self.stop()
        if os.environ.get("POSTERN_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def messages(self, user):
        """The files in the user's Maildir new/, oldest first."""
        new = os.path.join(self.mail_dir, "example.test", user, "new")
        try:
            names = os.listdir(new)
        except FileNotFoundError:
            return []
        paths = sorted((os.path.join(new, n) for n in names), key=os.path.getmtime)
        result = []
        for path in paths:
            with open(path, "rb") as f:
                result.append(f.read())
        return result

    def wait_for_messages(self, user, count, timeout=20, log=""):
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(user)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(
                    "%s has %d of %d messages in Dovecot after %s s\n"
                    "Postern log:\n%s\nDovecot:\n%s"
                    % (user, len(found), count, timeout, log()[-3000:] if log else "",
                       self.output()))
            time.sleep(0.05)


def headers_added_by(stored, message):
    """Header names that stored (LF line ends) has before message."""
    prefix = stored[:len(stored) - len(message)]
    names = []
    for line in prefix.split(b"\n"):
        if line and not line[:1].isspace():
            names.append(line.split(b":", 1)[0].decode())
    return names


class LmtpTest(unittest.TestCase):
    """Postern delivers to a Dovecot of its own over LMTP."""

    def setUp(self):
        # NOTE: as another user, Dovecot fails to chown its internal
        # sockets to its "dovecot" group; a non-root configuration for it
        # is not written yet.
        if os.geteuid() != 0:
            self.skipTest("running Dovecot for the test needs root")
        if not os.path.exists(DOVECOT):
            self.skipTest("%s is missing: install dovecot-core and "
                          "dovecot-lmtpd (scripts/install-deps.sh)" % DOVECOT)
        if not os.path.exists("/usr/lib/dovecot/lmtp"):
            self.skipTest("/usr/lib/dovecot/lmtp is missing: install dovecot-lmtpd")
        for program in ("master/master", "smtpd/smtpd", "qmgr/qmgr", "smtp/smtp"):
            if not os.path.exists(os.path.join(BUILD_DIR, program)):
                self.skipTest("%s is not built" % program)
        self.dovecot = Dovecot(users=["alice", "bob"])
        self.addCleanup(self.dovecot.remove)
        self.dovecot.start()
        self.inst = None

    def tearDown(self):
        if self.inst is not None:
            self.inst.stop()

    def start_instance(self, main_cf):
        # carol exists for Postern's smtpd, but not in Dovecot.
        self.inst = Instance(main_cf=main_cf, users=["alice", "bob", "carol"],
                             master_cf_extra=LMTP_MASTER_CF)
        self.inst.start()
        return self.inst

    def route_domain(self, nexthop):
        """An instance that sends example.test to nexthop over LMTP."""
        return self.start_instance({
            "transport_maps": "inline:{ example.test=lmtp:%s }" % nexthop})

    def send(self, rcpts, body=b"hello\r\n", sender="alice@example.test"):
        message = (b"From: alice@example.test\r\nSubject: lmtp test\r\n\r\n" + body)
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port,
                          source_address=("127.0.0.1", 0), timeout=20) as s:
            s.sendmail(sender, rcpts, message)
        return message.replace(b"\r\n", b"\n")

    def assert_delivered(self, stored, message):
        self.assertTrue(stored.endswith(message), stored[-300:])
        added = headers_added_by(stored, message)
        # Dovecot adds Return-Path, its Received line and, for a
        # transaction of one recipient, Delivered-To. Postern's smtpd
        # added the other Received line.
        self.assertTrue(set(added) <= {"Return-Path", "Delivered-To", "Received"},
                        added)
        self.assertEqual(added.count("Received"), 2, added)
        self.assertEqual(added[0], "Return-Path", added)
        self.assertIn(b"Return-Path: <alice@example.test>\n", stored)
        self.assertIn(b"with LMTP", stored)

    def test_virtual_transport_unix_byte_exact(self):
        self.start_instance({
            "virtual_transport": "lmtp:unix:%s" % self.dovecot.socket_path})
        body = (b".leading dot\r\n..two dots\r\ncaf\xc3\xa9\r\n" + b"z" * 998
                + b"\r\nlast line\r\n")
        message = self.send(["bob@example.test"], body)
        stored = self.dovecot.wait_for_messages("bob", 1,
                                                log=self.inst.log_text)[0]
        self.assert_delivered(stored, message)
        self.assertIn(b"Delivered-To: bob@example.test\n", stored)
        log = self.inst.log_text()
        self.assertIn("relay=unix:%s" % self.dovecot.socket_path, log)
        self.assertIn("status=sent", log)

    def test_two_recipients_one_transaction(self):
        self.route_domain("unix:%s" % self.dovecot.socket_path)
        message = self.send(["alice@example.test", "bob@example.test"])
        for user in ("alice", "bob"):
            stored = self.dovecot.wait_for_messages(user, 1,
                                                    log=self.inst.log_text)[0]
            self.assert_delivered(stored, message)
        # One LMTP session, one transaction: Dovecot logs each delivery
        # as "lmtp(USER)<PID><SESSION[:Rn]>: ... saved mail to INBOX".
        with open(self.dovecot.log_path, errors="replace") as f:
            log = f.read()
        sessions = re.findall(r"lmtp\([^)]*\)<\d+><([^>:]+)[^>]*>: Info: "
                              r"[^\n]*saved mail to INBOX", log)
        self.assertEqual(len(sessions), 2, log)
        self.assertEqual(len(set(sessions)), 1, log)

    def test_second_message_reuses_connection(self):
        self.route_domain("unix:%s" % self.dovecot.socket_path)
        self.send(["alice@example.test"])
        self.dovecot.wait_for_messages("alice", 1, log=self.inst.log_text)
        self.send(["bob@example.test"])
        self.dovecot.wait_for_messages("bob", 1, log=self.inst.log_text)
        with open(self.dovecot.log_path, errors="replace") as f:
            log = f.read()
        # start() opened one connection to wait for the greeting; the
        # agent opened one more and sent RSET before the second message.
        self.assertEqual(log.count("Connect from local"), 2, log)

    def test_unknown_user_bounces(self):
        self.route_domain("unix:%s" % self.dovecot.socket_path)
        message = self.send(["bob@example.test", "carol@example.test"])
        stored = self.dovecot.wait_for_messages("bob", 1,
                                                log=self.inst.log_text)[0]
        self.assert_delivered(stored, message)
        # The bounce goes to the sender, alice, over LMTP too.
        bounce = self.dovecot.wait_for_messages("alice", 1,
                                                log=self.inst.log_text)[0]
        self.assertIn(b"carol@example.test", bounce)
        self.assertIn(b"550 5.1.1 <carol@example.test> User doesn't exist", bounce)
        self.assertIn("status=bounced", self.inst.log_text())

    def test_stopped_dovecot_defers_then_flush(self):
        self.route_domain("unix:%s" % self.dovecot.socket_path)
        self.dovecot.stop()
        message = self.send(["bob@example.test"])
        deadline = time.monotonic() + 20
        while "status=deferred" not in self.inst.log_text():
            self.assertLess(time.monotonic(), deadline, self.inst.log_text())
            time.sleep(0.1)
        self.assertIn("connect to unix:%s" % self.dovecot.socket_path,
                      self.inst.log_text())
        out = self.inst.postern("queue", "--json", check=True).stdout
        queue = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(len(queue), 1, out)
        self.assertEqual(queue[0]["queue_name"], "deferred", out)

        self.dovecot.start()
        self.inst.postern("flush", check=True)
        stored = self.dovecot.wait_for_messages("bob", 1,
                                                log=self.inst.log_text)[0]
        self.assert_delivered(stored, message)

    def test_inet_listener(self):
        self.route_domain("inet:127.0.0.1:%d" % self.dovecot.port)
        message = self.send(["alice@example.test"])
        stored = self.dovecot.wait_for_messages("alice", 1,
                                                log=self.inst.log_text)[0]
        self.assert_delivered(stored, message)
        self.assertIn("relay=127.0.0.1[127.0.0.1]:%d" % self.dovecot.port,
                      self.inst.log_text())


if __name__ == "__main__":
    unittest.main()
