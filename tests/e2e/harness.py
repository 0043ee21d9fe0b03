"""End-to-end test harness: private Postern instances and an SMTP sink.

Each Instance lives in its own temporary directory with its own
configuration, queue, Maildirs and log file, listens on free loopback
ports, and runs the programs of this build tree through a
daemon_directory of symbolic links. Everything it starts is stopped by
PID in stop().
"""

import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

TOP_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("POSTERN_BUILD_DIR", TOP_DIR)

# Program name -> path in the build tree.
PROGRAMS = {
    "master": "master/master",
    "smtpd": "smtpd/smtpd",
    "qmgr": "qmgr/qmgr",
    "pickup": "pickup/pickup",
    "local": "local/local",
    "smtp": "smtp/smtp",
    "tlsproxy": "tlsproxy/tlsproxy",
    "authd": "authd/authd",
    "anvil": "anvil/anvil",
}
POSTERN_CLI = os.path.join(BUILD_DIR, "cli", "postern")

MAIL_OWNER_WHEN_ROOT = "postern"


def free_port(host="127.0.0.1"):
    """Return a TCP port on host that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host, port, timeout):
    """Wait until host:port accepts a connection; return True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def is_root():
    return os.geteuid() == 0


SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
AUTHD_USER_WHEN_ROOT = "postern-auth"


def create_sasldb(inst, users, password, domain):
    """Create inst.dir/sasl-data/sasldb2 with users, each with password
    in realm domain, readable by authd's user only; return its path."""
    data_dir = os.path.join(inst.dir, "sasl-data")
    os.makedirs(data_dir)
    sasldb = os.path.join(data_dir, "sasldb2")
    for user in users:
        subprocess.run([SASLPASSWD2, "-c", "-p", "-f", sasldb, "-u", domain, user],
                       input=password + "\n", text=True, check=True)
    os.chmod(sasldb, 0o600)
    if is_root():
        pw = pwd.getpwnam(AUTHD_USER_WHEN_ROOT)
        os.chown(sasldb, pw.pw_uid, pw.pw_gid)
        os.chown(data_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(data_dir, 0o700)
    return sasldb


class Instance:
    """A Postern instance in a temporary directory.

    main_cf: parameters merged over the defaults below.
    users: local parts of the virtual mailboxes in example.test.
    master_cf_extra: lines appended to the generated master.cf.
    tls: make test certificates (scripts/make-test-certs.sh) in
        dir/certs, set smtpd_tls_security_level = may, and add a
        wrapper-mode (implicit TLS) listener on smtps_port; tls_ca is
        the root CA file that verifies the server.
    """

    def __init__(self, main_cf=None, users=("alice", "bob"), master_cf_extra="",
                 name="postern", tls=False):
        self.dir = tempfile.mkdtemp(prefix="postern-e2e-")
        # Services that run as mail_owner must be able to reach the queue.
        os.chmod(self.dir, 0o755)
        self.config_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.mail_base = os.path.join(self.dir, "mail")
        self.daemon_dir = os.path.join(self.dir, "libexec")
        self.log_file = os.path.join(self.dir, "maillog")
        self.master_out = os.path.join(self.dir, "master.out")
        self.users = list(users)
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.tls = tls
        self.smtps_port = free_port() if tls else None
        self.certs_dir = os.path.join(self.dir, "certs")
        self.tls_ca = os.path.join(self.certs_dir, "ca.pem")
        self.master_pid = None
        self._master_proc = None
        self._known_children = set()

        if is_root():
            pw = pwd.getpwnam(MAIL_OWNER_WHEN_ROOT)
        else:
            pw = pwd.getpwuid(os.getuid())
        self.mail_owner = pw.pw_name
        self.mail_uid = pw.pw_uid
        self.mail_gid = pw.pw_gid

        self.main_cf = self._default_main_cf()
        if tls:
            self.main_cf.update(self._tls_main_cf())
        self.main_cf.update(main_cf or {})
        self.master_cf_extra = master_cf_extra
        self._write_files()

    def _default_main_cf(self):
        mailboxes = ", ".join("%s@example.test=%s/" % (u, u) for u in self.users)
        return {
            "myhostname": "mail.example.test",
            "mydomain": "example.test",
            "mydestination": "localhost",
            "mynetworks": "127.0.0.2/32",
            "virtual_mailbox_domains": "example.test",
            "virtual_mailbox_base": self.mail_base,
            "virtual_mailbox_maps": "inline:{ %s }" % mailboxes,
            "virtual_uid_maps": "static:%d" % self.mail_uid,
            "virtual_gid_maps": "static:%d" % self.mail_gid,
            "alias_maps": "",
            "local_recipient_maps": "unix:passwd.byname",
            "queue_directory": self.queue_dir,
            "daemon_directory": self.daemon_dir,
            "mail_owner": self.mail_owner,
            "maillog_file": self.log_file,
            "smtpd_peername_lookup": "no",
            "minimal_backoff_time": "60s",
            "maximal_backoff_time": "120s",
            "queue_run_delay": "60s",
            # No anvil in the default master.cf: tests that need the
            # per-client limits add it and set their own values.
            "smtpd_client_connection_count_limit": "0",
        }

    def _tls_main_cf(self):
        subprocess.run([os.path.join(TOP_DIR, "scripts", "make-test-certs.sh"),
                        self.certs_dir, "mail.example.test"],
                       check=True, capture_output=True)
        return {
            "smtpd_tls_chain_files": "%s, %s" % (
                os.path.join(self.certs_dir, "server-chain.pem"),
                os.path.join(self.certs_dir, "server-ec-chain.pem")),
            "smtpd_tls_security_level": "may",
        }

    def _smtps_line(self):
        if not self.tls:
            return ""
        return ("127.0.0.1:%d inet n - n - 1 smtpd\n"
                "  -o syslog_name=postern/smtps -o smtpd_tls_wrappermode=yes\n"
                % self.smtps_port)

    def master_cf_text(self):
        return (
            "# service type private unpriv chroot wakeup maxproc command\n"
            "127.0.0.1:%d inet n - n - 1 smtpd\n"
            "127.0.0.1:%d inet n - n - 1 smtpd\n"
            "  -o syslog_name=postern/submission\n"
            "qmgr unix n - n 300 1 qmgr\n"
            "pickup unix n - n 60 1 pickup\n"
            "local unix - n n - - local\n"
            "smtp unix - - n - - smtp\n"
            % (self.smtp_port, self.submission_port)
        ) + self._smtps_line() + self._tlsproxy_line() + self._authd_line() \
            + self.master_cf_extra

    @staticmethod
    def _tlsproxy_line():
        if os.path.exists(os.path.join(BUILD_DIR, PROGRAMS["tlsproxy"])):
            return "tlsproxy unix - - n - 1 tlsproxy\n"
        return ""

    @staticmethod
    def _authd_line():
        if os.path.exists(os.path.join(BUILD_DIR, PROGRAMS["authd"])):
            return "authd unix - - n - 1 authd\n"
        return ""

    def _write_files(self):
        os.makedirs(self.config_dir)
        os.makedirs(self.daemon_dir)
        os.makedirs(self.mail_base)
        if is_root():
            os.chown(self.mail_base, self.mail_uid, self.mail_gid)
        for program, relpath in PROGRAMS.items():
            os.symlink(os.path.join(BUILD_DIR, relpath),
                       os.path.join(self.daemon_dir, program))
        self.write_main_cf()
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write(self.master_cf_text())

    def write_main_cf(self):
        """(Re)write main.cf from self.main_cf."""
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            for name in sorted(self.main_cf):
                f.write("%s = %s\n" % (name, self.main_cf[name]))

    def start(self, timeout=15):
        """Run master in the foreground and wait until both ports answer."""
        out = open(self.master_out, "ab")
        master = os.path.join(self.daemon_dir, "master")
        self._master_proc = subprocess.Popen(
            [master, "-c", self.config_dir, "-f"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.master_pid = self._master_proc.pid
        ports = [self.smtp_port, self.submission_port]
        if self.tls:
            ports.append(self.smtps_port)
        try:
            for port in ports:
                if not wait_for_port("127.0.0.1", port, timeout):
                    raise RuntimeError("instance did not answer on port %d; "
                                       "master output:\n%s"
                                       % (port, self.master_output()))
            self.wait_for_service("qmgr", timeout)
            if self.tls:
                self.wait_for_service("tlsproxy", timeout)
        except RuntimeError:
            # The message is built before stop() removes the directory, and
            # stop() keeps master from outliving the failed start.
            self.stop()
            raise
        return self

    def wait_for_service(self, program, timeout=15):
        """Wait until master runs a process of program; return its PIDs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.service_pids().get(program)
            if pids:
                return pids
            time.sleep(0.05)
        raise RuntimeError("no %s process after %s s; master output:\n%s"
                           % (program, timeout, self.master_output()))

    def master_output(self):
        try:
            with open(self.master_out, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_text(self):
        """Contents of the instance's maillog_file ("" before it exists)."""
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def service_pids(self):
        """Map program name -> PIDs of master's children, read from /proc."""
        result = {}
        if self.master_pid is None:
            return result
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid != self.master_pid:
                    continue
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    argv = f.read().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            program = os.path.basename(argv[0].decode("utf-8", "replace"))
            result.setdefault(program, []).append(int(entry))
            self._known_children.add(int(entry))
        return result

    def postern(self, *args, check=False, timeout=60):
        """Run the postern command against this instance."""
        return subprocess.run([POSTERN_CLI, "-c", self.config_dir] + list(args),
                              capture_output=True, text=True, check=check,
                              timeout=timeout)

    def maildir(self, user):
        return os.path.join(self.mail_base, user)

    def messages(self, user):
        """Contents of the files in the user's Maildir new/, oldest first.

        Sorted by modification time, then name, because Maildir names
        carry no ordering guarantee within one second.
        """
        new_dir = os.path.join(self.maildir(user), "new")
        try:
            names = sorted(os.listdir(new_dir),
                           key=lambda n: (os.stat(os.path.join(new_dir, n)).st_mtime_ns, n))
        except FileNotFoundError:
            return []
        result = []
        for name in names:
            with open(os.path.join(new_dir, name), "rb") as f:
                result.append(f.read())
        return result

    def wait_for_messages(self, user, count, timeout=20):
        """Wait until the user's Maildir holds count messages; return them.

        Raises AssertionError naming the count seen when time runs out.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(user)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError("%s has %d of %d messages after %s s; log:\n%s"
                                     % (user, len(found), count, timeout,
                                        self.log_text()[-4000:]))
            time.sleep(0.05)

    def stop(self):
        """Stop master by PID, then any of its children still alive; remove the directory."""
        self.service_pids()
        if self._master_proc is not None and self._master_proc.poll() is None:
            self._master_proc.send_signal(signal.SIGTERM)
            try:
                self._master_proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._master_proc.kill()
                self._master_proc.wait()
        for pid in self._known_children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._master_proc = None
        if os.environ.get("POSTERN_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _SinkHandler(socketserver.StreamRequestHandler):
    """One SMTP session of SmtpSink: enough ESMTP for a delivery agent."""

    def send_line(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
        with sink.lock:
            sink.connections += 1
        self.send_line("220 sink.test ESMTP test sink")
        mail_from, rcpts = None, []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            with sink.lock:
                sink.commands.append(line)
            if verb in ("EHLO", "LHLO"):
                self.send_line("250-sink.test")
                self.send_line("250-PIPELINING")
                self.send_line("250-8BITMIME")
                self.send_line("250-ENHANCEDSTATUSCODES")
                self.send_line("250 SIZE %d" % sink.size_limit)
            elif verb == "HELO":
                self.send_line("250 sink.test")
            elif verb == "MAIL":
                mail_from, rcpts = _angle(line), []
                self.send_line(sink.mail_reply)
            elif verb == "RCPT":
                rcpt = _angle(line)
                reply = sink.rcpt_reply(rcpt)
                if reply.startswith("2"):
                    rcpts.append(rcpt)
                self.send_line(reply)
            elif verb == "DATA":
                if not rcpts:
                    self.send_line("554 5.5.1 Error: no valid recipients")
                    continue
                self.send_line("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    return
                reply = sink.data_reply
                if reply.startswith("2"):
                    with sink.lock:
                        sink.messages.append((mail_from, list(rcpts), data))
                self.send_line(reply)
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.send_line("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send_line("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send_line("221 2.0.0 Bye")
                return
            else:
                self.send_line("502 5.5.2 Error: command not recognized")

    def _read_data(self):
        lines = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if not raw:
                return None
            if raw == b".\r\n":
                return b"".join(lines)
            if raw.startswith(b"."):
                raw = raw[1:]
            lines.append(raw)


def _angle(line):
    start, end = line.find("<"), line.find(">")
    return line[start + 1:end] if 0 <= start < end else ""


class _ThreadingServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """A threaded SMTP server on 127.0.0.1 that records what it receives.

    messages: [(mail_from, [rcpts], data bytes with CRLF line ends)].
    rcpt_reply: callable(rcpt) -> reply line; mail_reply, data_reply: lines.
    """

    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.messages = []
        self.commands = []
        self.connections = 0
        self.size_limit = 50 * 1024 * 1024
        self.mail_reply = "250 2.1.0 Ok"
        self.rcpt_reply = lambda rcpt: "250 2.1.5 Ok"
        self.data_reply = "250 2.0.0 Ok: queued"
        self.server = _ThreadingServer((host, port), _SinkHandler)
        # A non-blocking listener: when a connection vanishes between the
        # poll and accept(), accept() fails instead of blocking the serve
        # loop for good, which would make close() wait forever.
        self.server.socket.setblocking(False)
        self.server.sink = self
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count, timeout=20):
        """Wait until count messages arrived; return the list of messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError("sink received %d of %d messages after %s s"
                                 % (len(self.messages), count, timeout))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def body_of(message):
    """Split a delivered message at the first blank line: (headers, body)."""
    head, sep, body = message.partition(b"\n\n")
    if not sep:
        head, sep, body = message.partition(b"\r\n\r\n")
    return head, body
