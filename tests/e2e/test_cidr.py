"""cidr: tables in check_client_access and in mynetworks, file entries in
mynetworks, and postern map -q on a cidr: table.

One instance serves every case. Clients bind to different loopback
addresses: 127.0.0.1 (outside every list), 127.0.0.2 (in the mynetworks
cidr: table), 127.0.0.3 and 127.0.0.5 (rejected by the client table, the
second through a /30 network), 127.0.0.8 (passed by an earlier DUNNO
line) and 127.0.0.9 (in the mynetworks file).
"""

import os
import shutil
import smtplib
import tempfile
import time
import unittest

from harness import Instance

CLIENT_TABLE = """\
# Client access: first match wins.
127.0.0.3/32 REJECT Listed in the test table
127.0.0.4/30 554 5.7.1 Network listed
127.0.0.0/24 DUNNO
127.0.0.8 REJECT Never reached
"""

MYNETWORKS_TABLE = """\
127.0.0.2 OK
[2001:db8::]/32 OK
"""

MYNETWORKS_FILE = """\
# Networks allowed to relay, blank-separated or one per line.
127.0.0.9/32   198.51.100.0/24
192.0.2.0/24   # a documentation network
"""

MESSAGE = (b"From: a@client.test\r\nTo: alice@example.test\r\n"
           b"Subject: cidr\r\n\r\nbody\r\n")


def write_table(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


class CidrTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # smtpd runs as mail_owner, so the tables must be readable by all.
        cls.table_dir = tempfile.mkdtemp(prefix="postern-cidr-")
        os.chmod(cls.table_dir, 0o755)
        cls.client_table = write_table(cls.table_dir, "client_access.cidr",
                                       CLIENT_TABLE)
        cls.mynetworks_table = write_table(cls.table_dir, "mynetworks.cidr",
                                           MYNETWORKS_TABLE)
        cls.mynetworks_file = write_table(cls.table_dir, "mynetworks",
                                          MYNETWORKS_FILE)
        cls.inst = Instance(main_cf={
            "smtpd_client_restrictions":
                "check_client_access cidr:%s" % cls.client_table,
            "mynetworks": "cidr:%s, %s" % (cls.mynetworks_table,
                                           cls.mynetworks_file),
        })
        try:
            cls.inst.start()
        except Exception:
            shutil.rmtree(cls.table_dir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        shutil.rmtree(cls.table_dir, ignore_errors=True)

    def connect(self, source):
        smtp = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10,
                            source_address=(source, 0))
        self.addCleanup(smtp.close)
        self.assertEqual(smtp.ehlo("client.test")[0], 250)
        self.assertEqual(smtp.mail("a@client.test")[0], 250)
        return smtp

    def rcpt(self, source, rcpt):
        """Return the RCPT reply as "CODE text" for a client at source."""
        code, text = self.connect(source).rcpt(rcpt)
        return "%d %s" % (code, text.decode())

    def test_client_access_rejects_listed_address(self):
        self.assertEqual(
            self.rcpt("127.0.0.3", "alice@example.test"),
            "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: "
            "Listed in the test table")

    def test_client_access_matches_short_prefix(self):
        self.assertEqual(
            self.rcpt("127.0.0.5", "alice@example.test"),
            "554 5.7.1 <unknown[127.0.0.5]>: Client host rejected: "
            "Network listed")

    def test_client_access_first_match_wins(self):
        # The /24 DUNNO line comes before the line for 127.0.0.8.
        self.assertEqual(self.rcpt("127.0.0.8", "alice@example.test"),
                         "250 2.1.5 Ok")

    def test_client_access_accepts_other_client(self):
        smtp = self.connect("127.0.0.1")
        self.assertEqual(smtp.rcpt("alice@example.test")[0], 250)
        code, _ = smtp.data(MESSAGE)
        self.assertEqual(code, 250)
        messages = self.inst.wait_for_messages("alice", 1)
        self.assertTrue(messages[-1].endswith(b"\n\nbody\n"))

    def test_mynetworks_table_permits_relay(self):
        self.assertEqual(self.rcpt("127.0.0.2", "someone@elsewhere.test"),
                         "250 2.1.5 Ok")

    def test_mynetworks_file_permits_relay(self):
        self.assertEqual(self.rcpt("127.0.0.9", "someone@elsewhere.test"),
                         "250 2.1.5 Ok")

    def test_relay_outside_mynetworks_denied(self):
        self.assertEqual(
            self.rcpt("127.0.0.1", "someone@elsewhere.test"),
            "554 5.7.1 <someone@elsewhere.test>: Relay access denied")

    def test_map_query(self):
        spec = "cidr:" + self.client_table
        found = self.inst.postern("map", "-q", "127.0.0.3", spec)
        self.assertEqual(found.returncode, 0, found.stderr)
        self.assertEqual(found.stdout, "REJECT Listed in the test table\n")
        network = self.inst.postern("map", "-q", "127.0.0.7", spec)
        self.assertEqual(network.stdout, "554 5.7.1 Network listed\n")
        first = self.inst.postern("map", "-q", "127.0.0.8", spec)
        self.assertEqual(first.stdout, "DUNNO\n")
        missing = self.inst.postern("map", "-q", "10.0.0.1", spec)
        self.assertEqual(missing.returncode, 1)
        self.assertEqual(missing.stdout, "")
        not_address = self.inst.postern("map", "-q", "example.com", spec)
        self.assertEqual(not_address.returncode, 1)

    def test_map_query_bad_line(self):
        path = write_table(self.table_dir, "bad.cidr",
                           "127.0.0.1 OK\n127.0.0.1/8 OK\n")
        result = self.inst.postern("map", "-q", "127.0.0.1", "cidr:" + path)
        self.assertEqual(result.returncode, 2)
        self.assertIn("bad.cidr line 2: invalid network \"127.0.0.1/8\"",
                      result.stderr)


class CidrReloadTest(unittest.TestCase):
    """A running smtpd reads a changed cidr: table without a restart."""

    def setUp(self):
        self.table_dir = tempfile.mkdtemp(prefix="postern-cidr-")
        self.addCleanup(shutil.rmtree, self.table_dir, True)
        os.chmod(self.table_dir, 0o755)
        self.table = write_table(self.table_dir, "client.cidr",
                                 "127.0.0.3 REJECT first version\n")
        self.inst = Instance(main_cf={
            "smtpd_client_restrictions":
                "check_client_access cidr:%s" % self.table,
        })
        self.inst.start()
        self.addCleanup(self.inst.stop)

    def rcpt_code(self, source):
        smtp = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10,
                            source_address=(source, 0))
        try:
            smtp.ehlo("client.test")
            smtp.mail("a@client.test")
            return smtp.rcpt("alice@example.test")[0]
        finally:
            smtp.close()

    def test_changed_table_takes_effect(self):
        self.assertEqual(self.rcpt_code("127.0.0.1"), 250)
        self.assertEqual(self.rcpt_code("127.0.0.3"), 554)
        # The table is checked for changes at most once a second.
        time.sleep(1.1)
        write_table(self.table_dir, "client.cidr",
                    "127.0.0.1/32 REJECT second version\n")
        self.assertEqual(self.rcpt_code("127.0.0.1"), 554)
        self.assertEqual(self.rcpt_code("127.0.0.3"), 250)
        self.assertIn("read the changed %s" % self.table, self.inst.log_text())


if __name__ == "__main__":
    unittest.main()
