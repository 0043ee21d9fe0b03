"""End-to-end tests of agent reuse: max_use and max_idle of local.

local names each Maildir file with its own PID (the "P<pid>" part), so
the delivered files show which process delivered each message.
"""

import os
import re
import smtplib
import time
import unittest

from harness import Instance


def send(inst, subject):
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=30) as client:
        client.sendmail("carol@elsewhere.test", ["alice@example.test"],
                        b"Subject: %s\r\n\r\nbody\r\n" % subject.encode())


def delivering_pids(inst, count):
    """Send count messages one after another and return the PID that delivered each."""
    for i in range(count):
        send(inst, "reuse %d" % i)
        inst.wait_for_messages("alice", i + 1)
    names = os.listdir(os.path.join(inst.maildir("alice"), "new"))
    return [re.search(r"P(\d+)", name).group(1) for name in names]


class AgentReuseTest(unittest.TestCase):

    def start(self, main_cf):
        inst = Instance(main_cf=main_cf)
        self.addCleanup(inst.stop)
        inst.start()
        return inst

    def test_default_max_use_reuses_process(self):
        inst = self.start({})
        pids = delivering_pids(inst, 3)
        self.assertLess(len(set(pids)), 3, pids)

    def test_max_use_one_new_process_each(self):
        inst = self.start({"max_use": "1"})
        pids = delivering_pids(inst, 3)
        self.assertEqual(len(set(pids)), 3, pids)

    def test_max_idle_ends_idle_agent(self):
        inst = self.start({"max_idle": "1s"})
        send(inst, "idle")
        inst.wait_for_messages("alice", 1)
        delivered = time.monotonic()
        deadline = delivered + 10
        while inst.service_pids().get("local") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(inst.service_pids().get("local", []), [])
        self.assertGreaterEqual(time.monotonic() - delivered, 0.5)


if __name__ == "__main__":
    unittest.main()
