"""End-to-end test that a queue file commit does not stall other sessions.

smtpd fsyncs each message in a worker thread before its 250 reply. A
preloaded library makes the fsync of incoming/ queue files take
SLOW_FSYNC seconds; while one client waits for its 250, another session
of the same smtpd process must still get prompt replies.
"""

import os
import shutil
import socket
import subprocess
import threading
import time
import unittest

from harness import Instance

SLOW_FSYNC = 2

# Slows fsync() and fdatasync() of files named incoming/.tmp.* (smtpd's
# queue files before the rename); every other descriptor is untouched.
SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void maybe_wait(int fd)
{
	char link[64], path[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return;
	path[n] = '\0';
	if (strstr(path, "/incoming/.tmp.") != NULL)
		sleep(SLOW_FSYNC);
}

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	maybe_wait(fd);
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	maybe_wait(fd);
	return real(fd);
}
"""


def read_reply(sock):
    """Read one complete SMTP reply; return its lines as text."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed; got %r" % data)
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and lines[-1] == b"" and lines[-2][3:4] == b" ":
            return data.decode()


def command(sock, line):
    sock.sendall(line.encode() + b"\r\n")
    return read_reply(sock)


class CommitStallTest(unittest.TestCase):

    def setUp(self):
        if shutil.which("cc") is None:
            self.skipTest("no C compiler for the fsync shim")
        self.inst = Instance()
        self.addCleanup(self.inst.stop)
        source = os.path.join(self.inst.dir, "slowsync.c")
        shim = os.path.join(self.inst.dir, "slowsync.so")
        with open(source, "w") as f:
            f.write(SHIM_SOURCE)
        subprocess.run(["cc", "-shared", "-fPIC", "-DSLOW_FSYNC=%d" % SLOW_FSYNC,
                        "-o", shim, source, "-ldl"], check=True)
        os.chmod(shim, 0o755)
        # master and the services it starts inherit the environment.
        os.environ["LD_PRELOAD"] = shim
        try:
            self.inst.start()
        finally:
            del os.environ["LD_PRELOAD"]

    def open_session(self):
        sock = socket.create_connection(("127.0.0.1", self.inst.smtp_port), timeout=15)
        self.addCleanup(sock.close)
        self.assertTrue(read_reply(sock).startswith("220 "))
        self.assertTrue(command(sock, "EHLO client.example.org").startswith("250"))
        return sock

    def test_other_session_answers_during_commit(self):
        slow = self.open_session()
        other = self.open_session()
        self.assertTrue(command(slow, "MAIL FROM:<carol@elsewhere.test>").startswith("250"))
        self.assertTrue(command(slow, "RCPT TO:<alice@example.test>").startswith("250"))
        self.assertTrue(command(slow, "DATA").startswith("354"))

        result = {}

        def finish_data():
            slow.sendall(b"Subject: slow commit\r\n\r\nbody\r\n.\r\n")
            result["reply"] = read_reply(slow)
            result["at"] = time.monotonic()

        sent = time.monotonic()
        thread = threading.Thread(target=finish_data)
        thread.start()
        time.sleep(0.3)

        # The other session and a new connection are served at once.
        asked = time.monotonic()
        self.assertEqual(command(other, "NOOP"), "250 2.0.0 Ok\r\n")
        fresh = self.open_session()
        self.assertEqual(command(fresh, "RSET"), "250 2.0.0 Ok\r\n")
        answered = time.monotonic()
        self.assertLess(answered - asked, 1.0)

        thread.join(SLOW_FSYNC + 15)
        self.assertTrue(result.get("reply", "").startswith("250 "), result)
        # The 250 waited for the slow fsync, so the shim was in effect, and
        # the other replies came before it.
        self.assertGreaterEqual(result["at"] - sent, SLOW_FSYNC - 0.2)
        self.assertLess(answered, result["at"])
        delivered = self.inst.wait_for_messages("alice", 1)
        self.assertIn(b"\nSubject: slow commit\n", delivered[0])


if __name__ == "__main__":
    unittest.main()
