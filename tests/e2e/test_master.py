"""End-to-end tests of master and of postern start, stop, reload and status.

Each test runs its own instance. The processes of a service are found in
/proc by their parent (master) and the "-n SERVICE" argument that master
passes on each command line.
"""

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance, is_root  # noqa: E402


def children_by_service(master_pid):
    """Map "-n" service name -> sorted PIDs of master's children."""
    result = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != master_pid:
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if "-n" in argv[:-1]:
            name = argv[argv.index("-n") + 1]
            result.setdefault(name, []).append(int(entry))
    return {name: sorted(pids) for name, pids in result.items()}


def wait_until(predicate, timeout, description):
    """Poll predicate until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %s s waiting for %s" % (timeout, description))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited and only waits for its parent to reap it.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_uid(pid):
    """The real, effective, saved and file-system UIDs from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line for PID %d" % pid)


class MasterTestCase(unittest.TestCase):
    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.stop)

    def smtp_service(self):
        return "127.0.0.1:%d" % self.inst.smtp_port

    def pid_file(self):
        return os.path.join(self.inst.queue_dir, "pid", "master.pid")

    def smtpd_pids(self):
        return children_by_service(self.inst.master_pid).get(self.smtp_service(), [])


class TestControlCommands(MasterTestCase):
    def kill_daemon_master(self):
        """Stop a master that `postern start` left running (test cleanup)."""
        try:
            with open(self.pid_file()) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return
        if pid > 0 and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            try:
                wait_until(lambda: not pid_alive(pid), 20, "master to exit")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)

    def test_start_status_stop_daemon(self):
        self.addCleanup(self.kill_daemon_master)
        started = self.inst.postern("start")
        self.assertEqual(started.returncode, 0, started.stderr)

        with open(self.pid_file()) as f:
            pid = int(f.read().strip())
        self.assertTrue(pid_alive(pid))
        self.assertIn("master PID %d" % pid, started.stdout)
        services = wait_until(lambda: children_by_service(pid).get("qmgr"), 10,
                              "a qmgr process")
        self.assertEqual(len(services), 1)
        with socket.create_connection(("127.0.0.1", self.inst.smtp_port), timeout=10) as s:
            self.assertTrue(s.recv(512).startswith(b"220 "))

        again = self.inst.postern("start")
        self.assertEqual(again.returncode, 1)
        self.assertIn("already running (master PID %d)" % pid, again.stderr)

        stopped = self.inst.postern("stop")
        self.assertEqual(stopped.returncode, 0, stopped.stderr)
        self.assertFalse(pid_alive(pid))
        self.assertFalse(os.path.exists(self.pid_file()))
        self.assertIn("stopped", self.inst.log_text())

    def test_commands_when_not_running(self):
        status = self.inst.postern("status")
        self.assertEqual(status.returncode, 1)
        self.assertIn("not running", status.stdout)
        for command in ("stop", "reload"):
            result = self.inst.postern(command)
            self.assertEqual(result.returncode, 1, command)
            self.assertIn("not running", result.stderr, command)

    def test_status_lists_services(self):
        self.inst.start()
        status = self.inst.postern("status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("master PID %d" % self.inst.master_pid, status.stdout)
        rows = [line.split() for line in status.stdout.splitlines()[2:]]
        listed = {(row[0], int(row[3])) for row in rows}
        for name, pids in children_by_service(self.inst.master_pid).items():
            for pid in pids:
                self.assertIn((name, pid), listed)
        self.assertIn(("qmgr", "unix", "qmgr"), {tuple(row[:3]) for row in rows})
        self.assertIn((self.smtp_service(), "inet", "smtpd"),
                      {tuple(row[:3]) for row in rows})

    def test_stop_by_pid_file(self):
        self.inst.start()
        children = [pid for pids in children_by_service(self.inst.master_pid).values()
                    for pid in pids]
        stopped = self.inst.postern("stop")
        self.assertEqual(stopped.returncode, 0, stopped.stderr)
        self.assertFalse(pid_alive(self.inst.master_pid))
        for pid in children:
            self.assertFalse(pid_alive(pid), "child %d outlived master" % pid)
        self.assertFalse(os.path.exists(self.pid_file()))


class TestSupervision(MasterTestCase):
    def test_second_master_rejected(self):
        self.inst.start()
        master = os.path.join(self.inst.daemon_dir, "master")
        second = subprocess.run([master, "-c", self.inst.config_dir, "-f"],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(second.returncode, 1)
        self.assertIn("another master is running with PID %d" % self.inst.master_pid,
                      second.stderr)
        self.assertIn(self.pid_file(), second.stderr)
        self.assertTrue(pid_alive(self.inst.master_pid))

    def test_missing_program_fatal(self):
        self.inst.master_cf_extra = "extra unix - - n - - nosuchprogram\n"
        with open(os.path.join(self.inst.config_dir, "master.cf"), "w") as f:
            f.write(self.inst.master_cf_text())
        master = os.path.join(self.inst.daemon_dir, "master")
        result = subprocess.run([master, "-c", self.inst.config_dir, "-t"],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 1)
        self.assertIn(os.path.join(self.inst.daemon_dir, "nosuchprogram"), result.stderr)
        self.assertIn("not found", result.stderr)

    def test_killed_smtpd_restarted(self):
        self.inst.start()
        old = self.smtpd_pids()
        self.assertEqual(len(old), 1)
        os.kill(old[0], signal.SIGKILL)
        new = wait_until(lambda: [p for p in self.smtpd_pids() if p != old[0]], 10,
                         "a new smtpd")
        self.assertEqual(len(new), 1)
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10) as client:
            code, _ = client.ehlo("client.example.test")
            self.assertEqual(code, 250)
            self.assertEqual(client.noop()[0], 250)
        self.assertIn("service %s pid %d killed by signal 9" % (self.smtp_service(), old[0]),
                      self.inst.log_text())

    def test_reload_keeps_session(self):
        self.inst.start()
        old = self.smtpd_pids()
        client = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10)
        self.addCleanup(client.close)
        self.assertEqual(client.ehlo("client.example.test")[0], 250)
        self.assertEqual(client.mail("sender@example.org")[0], 250)

        reloaded = self.inst.postern("reload")
        self.assertEqual(reloaded.returncode, 0, reloaded.stderr)
        new = wait_until(lambda: [p for p in self.smtpd_pids() if p not in old], 10,
                         "an smtpd of the new generation")
        self.assertEqual(len(new), 1)

        # The drained process still serves the open session to its end.
        self.assertEqual(client.rcpt("alice@example.test")[0], 250)
        code, _ = client.data(b"Subject: reload\r\n\r\nsent across a reload\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(client.quit()[0], 221)
        delivered = self.inst.wait_for_messages("alice", 1)
        self.assertIn(b"sent across a reload", delivered[0])

        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10) as second:
            self.assertEqual(second.ehlo("client.example.test")[0], 250)
        wait_until(lambda: not any(pid_alive(p) for p in old), 10,
                   "the drained smtpd to exit")
        self.assertIn("reload complete", self.inst.log_text())


class TestPrivileges(MasterTestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start services as mail_owner")
        super().setUp()

    def start_on_demand(self, name):
        """Connect to private/NAME so that master starts a process of it."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.connect(os.path.join(self.inst.queue_dir, "private", name))
        return wait_until(lambda: children_by_service(self.inst.master_pid).get(name),
                          10, "a %s process" % name)

    def test_service_users(self):
        self.inst.start()
        local = self.start_on_demand("local")
        smtp = self.start_on_demand("smtp")
        services = children_by_service(self.inst.master_pid)
        unprivileged = services[self.smtp_service()] + services["qmgr"] + smtp
        # A service drops privileges after it starts; give it a moment.
        for pid in unprivileged:
            wait_until(lambda: proc_uid(pid) == [self.inst.mail_uid] * 4, 10,
                       "PID %d to run as %s" % (pid, self.inst.mail_owner))
        for pid in local:
            self.assertEqual(proc_uid(pid)[1], 0, "local must keep root")
        self.assertNotEqual(self.inst.mail_uid, 0)


if __name__ == "__main__":
    unittest.main()
