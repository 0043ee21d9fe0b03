"""End-to-end edge cases of the control commands on a running instance."""

import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance  # noqa: E402


class ControlEdgeTest(unittest.TestCase):

    def setUp(self):
        self.inst = Instance(users=["alice"])
        self.inst.start()
        self.addCleanup(self.inst.stop)

    def test_reload_rejects_bad_master_cf(self):
        master_cf = os.path.join(self.inst.config_dir, "master.cf")
        with open(master_cf, "a") as f:
            f.write("bogus line here\n")
        result = self.inst.postern("reload")
        self.assertEqual(result.returncode, 1)
        self.assertIn("master.cf, line", result.stderr)
        self.assertIn("reload not sent", result.stderr)
        self.assertEqual(result.stdout, "")
        time.sleep(0.3)
        self.assertNotIn("reloading the configuration", self.inst.log_text())

        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10) as client:
            client.sendmail("s@client.test", ["alice@example.test"],
                            b"Subject: after\r\n\r\nbody\r\n")
        self.assertEqual(len(self.inst.wait_for_messages("alice", 1)), 1)

    def test_reload_rejects_bad_main_cf_value(self):
        self.inst.main_cf["message_size_limit"] = "10m"
        self.inst.write_main_cf()
        result = self.inst.postern("reload")
        self.assertEqual(result.returncode, 1)
        self.assertIn('invalid value "10m" for message_size_limit', result.stderr)
        self.assertIn("expected an integer", result.stderr)
        self.assertIn("reload not sent", result.stderr)
        time.sleep(0.3)
        self.assertNotIn("reloading the configuration", self.inst.log_text())

        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10) as client:
            client.sendmail("s@client.test", ["alice@example.test"],
                            b"Subject: after\r\n\r\nbody\r\n")
        self.assertEqual(len(self.inst.wait_for_messages("alice", 1)), 1)


class ControlStartEdgeTest(unittest.TestCase):

    def test_start_rejects_bad_time_value(self):
        inst = Instance(users=["alice"], main_cf={"smtpd_timeout": "5x"})
        self.addCleanup(inst.stop)
        result = inst.postern("start")
        self.assertEqual(result.returncode, 1)
        self.assertIn('invalid value "5x" for smtpd_timeout', result.stderr)
        self.assertIn("expected a time", result.stderr)
        status = inst.postern("status")
        self.assertNotEqual(status.returncode, 0, status.stdout)


if __name__ == "__main__":
    unittest.main()
