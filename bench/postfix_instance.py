"""A private Postfix instance for the relay benchmark.

Uses Debian's postfix package (3.7): the programs in /usr/lib/postfix/sbin,
started with `postfix -c DIR start`, with its own config_directory,
queue_directory, data_directory and maillog_file in a temporary directory.
It never reads or changes /etc/postfix/main.cf or master.cf. Requires root,
because `postfix start` must run as root.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
DAEMON_DIR = "/usr/lib/postfix/sbin"
MAIL_OWNER = "postfix"

# Services of master.cf: name, type, private, unpriv, chroot, wakeup, maxproc,
# command. The SMTP listener is added in front of these with its address.
SERVICES = [
    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
    ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
    ("error", "unix", "-", "-", "n", "-", "-", "error"),
    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
    ("local", "unix", "-", "n", "n", "-", "-", "local"),
    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
    ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
]


def postfix_available():
    """Return None when a private Postfix can run here, else the reason."""
    if os.geteuid() != 0:
        return "not running as root (postfix start needs root)"
    for path in (POSTFIX, POSTCONF, os.path.join(DAEMON_DIR, "master")):
        if not os.access(path, os.X_OK):
            return "%s not found; install Debian's postfix package" % path
    try:
        import pwd
        pwd.getpwnam(MAIL_OWNER)
    except KeyError:
        return "user %s not found" % MAIL_OWNER
    return None


def _process_alive(pid):
    """Return True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class PostfixInstance:
    """Postfix relaying everything to relayhost, listening on 127.0.0.1:port."""

    name = "postfix"

    def __init__(self, smtp_port, relay_port, extra_main_cf=None):
        self.dir = tempfile.mkdtemp(prefix="postfix-bench-")
        os.chmod(self.dir, 0o755)
        self.config_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_file = os.path.join(self.dir, "maillog")
        self.smtp_port = smtp_port
        self.master_pid = None
        self.main_cf = {
            "compatibility_level": "3.6",
            "config_directory": self.config_dir,
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "daemon_directory": DAEMON_DIR,
            "mail_owner": MAIL_OWNER,
            "myhostname": "bench.example.test",
            "mydomain": "example.test",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "[127.0.0.1]:%d" % relay_port,
            "default_destination_concurrency_limit": "20",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            # Postern's benchmark instance skips the reverse lookup too.
            "smtpd_peername_lookup": "no",
            "maillog_file": self.log_file,
            "maillog_file_prefixes": self.dir,
        }
        self.main_cf.update(extra_main_cf or {})
        self._write_config()

    def _write_config(self):
        os.makedirs(self.config_dir)
        os.makedirs(self.queue_dir)
        os.makedirs(self.data_dir)
        shutil.chown(self.data_dir, MAIL_OWNER, MAIL_OWNER)
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            for key in sorted(self.main_cf):
                f.write("%s = %s\n" % (key, self.main_cf[key]))
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write("127.0.0.1:%d inet n - n - - smtpd\n" % self.smtp_port)
            for service in SERVICES:
                f.write(" ".join(service) + "\n")

    def _postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", self.config_dir] + list(args),
                              capture_output=True, text=True, timeout=60)

    def start(self, timeout=20):
        """Run `postfix -c DIR start` and wait for the SMTP port and qmgr."""
        result = self._postfix("start")
        if result.returncode != 0:
            raise RuntimeError("postfix start failed (exit %d): %s%s"
                               % (result.returncode, result.stdout, result.stderr))
        with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
            self.master_pid = int(f.read().split()[0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.smtp_port), 1).close()
                if "qmgr" in self.service_pids():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("postfix did not answer on port %d" % self.smtp_port)

    def set_parameter(self, name, value):
        """Set a main.cf parameter with postconf and reload the instance."""
        subprocess.run([POSTCONF, "-c", self.config_dir, "-e",
                        "%s = %s" % (name, value)], check=True)
        result = self._postfix("reload")
        if result.returncode != 0:
            raise RuntimeError("postfix reload failed: %s" % result.stderr)

    def service_pids(self):
        """Map process name (from /proc/PID/comm) -> PIDs of master's children."""
        result = {}
        if self.master_pid is None:
            return result
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
                before, after = stat.rsplit(")", 1)
                if int(after.split()[1]) != self.master_pid:
                    continue
                name = before.split("(", 1)[1]
            except (OSError, ValueError, IndexError):
                continue
            result.setdefault(name, []).append(int(entry))
        return result

    def log_text(self):
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=20):
        """Run `postfix -c DIR stop`, wait until master is gone, remove the dir."""
        if self.master_pid is not None:
            result = self._postfix("stop")
            deadline = time.monotonic() + timeout
            while _process_alive(self.master_pid):
                if time.monotonic() > deadline:
                    raise RuntimeError("postfix master %d still runs %d s after stop: %s"
                                       % (self.master_pid, timeout, result.stderr))
                time.sleep(0.05)
            self.master_pid = None
        shutil.rmtree(self.dir, ignore_errors=True)
