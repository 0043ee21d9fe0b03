"""End-to-end tests of the master.cf chroot column, as root.

One instance runs smtpd, qmgr, smtp and tlsproxy chrooted into
queue_directory, while local stays outside because it writes the
mailboxes. The tests read /proc/PID/root of each process, deliver to a
virtual mailbox over plain SMTP and over STARTTLS, and relay through the
smtp agent to a sink. The Received header must keep the time zone that
was in effect before the chroot. Another pair of instances relays at
smtp_tls_security_level = verify through a chrooted tlsproxy, whose CA
file lies outside the chroot. A second instance has copies of the
/etc files for name lookups inside the chroot, and a third asks for a
chrooted local and must not start.
"""

import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Instance, SmtpSink  # noqa: E402

CHROOTED = ("smtpd", "qmgr", "smtp", "tlsproxy")

# What glibc needs under queue_directory for user and host name lookups
# in a chrooted smtpd (local_recipient_maps) and smtp agent.
CHROOT_ETC_FILES = ("passwd", "hosts", "nsswitch.conf", "resolv.conf",
                    "services")

# A zone whose name is not a POSIX TZ rule: glibc can only get its
# offset from the zone file, which is outside the chroot.
TEST_ZONE = "Asia/Kolkata"
TEST_ZONE_OFFSET = "+0530"

# RFC 5322 3.3 date-time as smtpd writes it after the ";" of Received.
RECEIVED_DATE = re.compile(
    rb";\s*(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    rb"\d\d:\d\d:\d\d ([+-]\d{4})")


def set_chroot_column(master_cf, commands):
    """Return master_cf with the chroot column set to y on the lines
    whose command is in commands."""
    lines = []
    for line in master_cf.splitlines():
        fields = line.split()
        if line[:1].strip() and not line.startswith("#") and len(fields) >= 8 \
                and fields[7] in commands:
            fields[4] = "y"
            line = " ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


class ChrootInstance(Instance):
    """An Instance whose master.cf chroots the given commands."""

    def __init__(self, chrooted, **kwargs):
        self.chrooted = tuple(chrooted)
        super().__init__(**kwargs)

    def master_cf_text(self):
        return set_chroot_column(super().master_cf_text(), self.chrooted)


def start_in_zone(inst, zone):
    """Start inst with TZ=zone in the environment that master passes on."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    try:
        inst.start()
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved


def process_root(pid):
    return os.readlink("/proc/%d/root" % pid)


def message(subject, to="alice@example.test"):
    return ("From: <sender@example.org>\r\nTo: <%s>\r\n"
            "Subject: %s\r\n\r\nbody of %s\r\n" % (to, subject, subject))


class ChrootServicesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("chroot needs root")
        if not os.path.exists(os.path.join(BUILD_DIR, "tlsproxy", "tlsproxy")):
            raise unittest.SkipTest("tlsproxy is not built")
        cls.sink = SmtpSink()
        cls.inst = ChrootInstance(CHROOTED, tls=True, main_cf={
            "relayhost": "[127.0.0.1]:%d" % cls.sink.port,
        })
        try:
            cls.use_hash_mailbox_table(cls.inst)
            start_in_zone(cls.inst, TEST_ZONE)
        except Exception:
            cls.sink.close()
            raise
        cls.queue_root = os.path.realpath(cls.inst.queue_dir)

    @staticmethod
    def use_hash_mailbox_table(inst):
        """Serve virtual_mailbox_maps from a hash: file outside the chroot,
        which smtpd and qmgr open before they chroot."""
        source = os.path.join(inst.config_dir, "vmailbox")
        with open(source, "w") as f:
            for user in inst.users:
                f.write("%s@example.test %s/\n" % (user, user))
        inst.postern("map", source, check=True)
        inst.main_cf["virtual_mailbox_maps"] = "hash:" + source
        inst.write_main_cf()

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.sink.close()

    def expect_delivery(self, user, subject):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for msg in self.inst.messages(user):
                if ("Subject: %s\n" % subject).encode() in msg:
                    return msg
            time.sleep(0.05)
        self.fail("no message %r for %s; log:\n%s"
                  % (subject, user, self.inst.log_text()[-4000:]))

    def assert_chrooted(self, program):
        pids = self.inst.wait_for_service(program)
        for pid in pids:
            self.assertEqual(process_root(pid), self.queue_root,
                             "%s[%d] is not chrooted" % (program, pid))

    def test_long_running_services_chrooted(self):
        for program in ("smtpd", "qmgr", "tlsproxy"):
            with self.subTest(program=program):
                self.assert_chrooted(program)

    def test_virtual_delivery_keeps_time_zone(self):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20) as s:
            s.ehlo("client.example.org")
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("chroot plain"))
        delivered = self.expect_delivery("alice", "chroot plain")
        self.assertIn(b"\nbody of chroot plain\n", delivered)
        head = delivered.split(b"\n\n", 1)[0]
        received = head[head.index(b"Received: "):]
        match = RECEIVED_DATE.search(received)
        self.assertIsNotNone(match, received[:300])
        self.assertEqual(match.group(1).decode(), TEST_ZONE_OFFSET)
        # local delivers outside the chroot.
        for pid in self.inst.service_pids().get("local", []):
            self.assertEqual(process_root(pid), "/")

    def test_starttls_delivery(self):
        ctx = ssl.create_default_context(cafile=self.inst.tls_ca)
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20) as s:
            s.ehlo("client.example.org")
            s._host = "mail.example.test"
            code, _ = s.starttls(context=ctx)
            self.assertEqual(code, 220)
            s.ehlo("client.example.org")
            s.sendmail("sender@example.org", ["bob@example.test"],
                       message("chroot tls", "bob@example.test"))
        delivered = self.expect_delivery("bob", "chroot tls")
        self.assertIn(b"with ESMTPS", delivered)

    def test_no_missing_files_logged(self):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20) as s:
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("chroot log"))
            # A second lookup a second later makes hash: tables check
            # whether their file was rebuilt.
            time.sleep(1.1)
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message("chroot log 2"))
        self.expect_delivery("alice", "chroot log 2")
        # A path that the chroot hides shows up as ENOENT in the log.
        hidden = [line for line in self.inst.log_text().splitlines()
                  if "No such file or directory" in line]
        self.assertEqual(hidden, [])

    def test_local_recipient_without_passwd_deferred(self):
        # unix:passwd.byname finds no etc/passwd inside the chroot: the
        # reply must be temporary, never 550 User unknown.
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            code, text = s.rcpt("root@localhost")
        self.assertEqual(code, 451)
        self.assertIn(b"4.3.0", text)
        self.assertIn("no etc/passwd inside the chroot", self.inst.log_text())

    def test_relay_through_smtp_agent(self):
        before = len(self.sink.messages)
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20,
                          source_address=("127.0.0.2", 0)) as s:
            s.ehlo("client.example.org")
            s.sendmail("sender@example.org", ["carol@example.org"],
                       message("chroot relay", "carol@example.org"))
        received = self.sink.wait_for(before + 1)
        mail_from, rcpts, data = received[-1]
        self.assertEqual(mail_from, "sender@example.org")
        self.assertEqual(rcpts, ["carol@example.org"])
        self.assertIn(b"Subject: chroot relay\r\n", data)
        self.assertIn(b"\r\nbody of chroot relay\r\n", data)
        # The agent waits max_idle for more work, so it is still there.
        self.assert_chrooted("smtp")


class ChrootVerifyRelayTest(unittest.TestCase):
    """Instance A, with smtp and tlsproxy chrooted, relays to instance B,
    which requires STARTTLS, at smtp_tls_security_level = verify. The CA
    file lies outside A's queue_directory, so tlsproxy must load it before
    the chroot."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("chroot needs root")
        if not os.path.exists(os.path.join(BUILD_DIR, "tlsproxy", "tlsproxy")):
            raise unittest.SkipTest("tlsproxy is not built")
        cls.b = Instance(tls=True, main_cf={"smtpd_tls_security_level": "encrypt"})
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()

    def relay_instance(self, ca_file, master_cf_extra="", main_cf=None):
        """Start A with ca_file as smtp_tls_CAfile; None means A's own
        test root, which did not sign B's certificate."""
        nexthop = "[127.0.0.1]:%d" % self.b.smtp_port
        a = ChrootInstance(CHROOTED, tls=True, master_cf_extra=master_cf_extra,
                           main_cf={
            "virtual_mailbox_domains": "a.example.test",
            "relayhost": nexthop,
            "smtp_tls_security_level": "verify",
            # B is reached by address, so name the certificate to expect.
            "smtp_tls_policy_maps": "inline:{ %s={verify match=mail.example.test} }"
                                    % nexthop,
        })
        a.main_cf["smtp_tls_CAfile"] = ca_file or a.tls_ca
        a.main_cf.update(main_cf or {})
        a.write_main_cf()
        a.start()
        self.addCleanup(a.stop)
        return a

    @staticmethod
    def submit(a, subject):
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=20,
                          source_address=("127.0.0.2", 0)) as s:
            s.ehlo("client.example.org")
            s.sendmail("sender@example.org", ["alice@example.test"],
                       message(subject))

    def test_verified_relay_delivered(self):
        a = self.relay_instance(self.b.tls_ca)
        self.submit(a, "chroot verify")
        deadline = time.monotonic() + 20
        found = []
        while not found and time.monotonic() < deadline:
            found = [m for m in self.b.messages("alice")
                     if b"Subject: chroot verify\n" in m]
            time.sleep(0.05)
        self.assertEqual(len(found), 1, a.log_text()[-4000:])
        # B's own Received header comes first and records A's STARTTLS.
        first = found[0].split(b"\nReceived: ")[1]
        self.assertRegex(first, rb"\(using TLSv1\.[23] with cipher \S+ "
                                rb"\(\d+/\d+ bits\)\)")
        self.assertIn(b"with ESMTPS id", first)
        self.assertIn("Verified TLS connection established to", a.log_text())
        for pid in a.service_pids().get("tlsproxy", []):
            self.assertEqual(process_root(pid), os.path.realpath(a.queue_dir))

    def test_master_cf_ca_file_delivered(self):
        # main.cf names the wrong CA file, and the transport's -o names
        # the right one: tlsproxy must have loaded that one at start too.
        a = self.relay_instance(None, master_cf_extra=(
            "smtpverify unix - - y - - smtp\n"
            "  -o smtp_tls_CAfile=%s\n" % self.b.tls_ca),
            main_cf={"default_transport": "smtpverify"})
        self.submit(a, "chroot master.cf ca")
        deadline = time.monotonic() + 20
        found = []
        while not found and time.monotonic() < deadline:
            found = [m for m in self.b.messages("alice")
                     if b"Subject: chroot master.cf ca\n" in m]
            time.sleep(0.05)
        self.assertEqual(len(found), 1, a.log_text()[-4000:])
        self.assertIn("Verified TLS connection established to", a.log_text())

    def test_wrong_ca_deferred(self):
        a = self.relay_instance(None)
        self.submit(a, "chroot wrong ca")
        deadline = time.monotonic() + 20
        entries = []
        out = ""
        while time.monotonic() < deadline:
            out = a.postern("queue", "--json").stdout
            entries = [json.loads(line) for line in out.splitlines()
                       if line.strip()]
            if entries and entries[0]["recipients"][0]["delay_reason"]:
                break
            time.sleep(0.2)
        self.assertEqual(len(entries), 1, out)
        recipient = entries[0]["recipients"][0]
        self.assertEqual(recipient["status"], "pending")
        self.assertIn("server certificate verification failed",
                      recipient["delay_reason"])
        self.assertNotIn("cannot load trust anchors", recipient["delay_reason"])


class ChrootEtcFilesTest(unittest.TestCase):
    """smtpd and smtp chrooted with copies of the /etc files they need."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("chroot needs root")
        self.sink = SmtpSink()
        self.addCleanup(self.sink.close)
        self.inst = ChrootInstance(("smtpd", "smtp"), main_cf={
            "relayhost": "[localhost]:%d" % self.sink.port,
        })
        etc = os.path.join(self.inst.queue_dir, "etc")
        os.makedirs(etc)
        for name in CHROOT_ETC_FILES:
            shutil.copy(os.path.join("/etc", name), etc)
        self.inst.start()
        self.addCleanup(self.inst.stop)

    def test_names_resolved_inside_chroot(self):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=20,
                          source_address=("127.0.0.2", 0)) as s:
            s.ehlo("client.example.org")
            s.mail("sender@example.org")
            code, _ = s.rcpt("root@localhost")
            self.assertEqual(code, 250)
            s.rset()
            s.sendmail("sender@example.org", ["dave@example.org"],
                       message("chroot hosts", "dave@example.org"))
        mail_from, rcpts, data = self.sink.wait_for(1)[0]
        self.assertEqual(rcpts, ["dave@example.org"])
        self.assertIn(b"Subject: chroot hosts\r\n", data)
        self.assertIn("relay=localhost[127.0.0.1]", self.inst.log_text())


class ChrootRejectedTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("chroot needs root")

    def test_local_chroot_rejected(self):
        inst = ChrootInstance(["local"])
        try:
            master = os.path.join(inst.daemon_dir, "master")
            proc = subprocess.run([master, "-c", inst.config_dir, "-f"],
                                  capture_output=True, text=True, timeout=20)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("service local: local cannot run chrooted",
                          proc.stdout + proc.stderr + inst.log_text())
        finally:
            inst.stop()


if __name__ == "__main__":
    unittest.main()
