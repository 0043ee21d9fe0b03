"""End-to-end tests of the smtp delivery agent.

AgentTest runs the agent alone, the way master starts it: listening
socket at descriptor 3, status pipe at 4. The tests write queue files in
the lib/qfile.h format and send requests in the lib/deliver.h format.
They check what the test servers receive, the per-recipient results and
the status bytes in the queue file. RelayTest sends mail through a whole
instance (smtpd, qmgr, smtp) to SmtpSink.
"""

import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Instance, SmtpSink, is_root  # noqa: E402

SMTP_AGENT = os.path.join(BUILD_DIR, "smtp", "smtp")

_qid_counter = [0]


def new_qid(arrival):
    """A queue ID of the lib/qfile.h form (22 uppercase hex digits)."""
    _qid_counter[0] += 1
    sec = int(arrival)
    usec = int((arrival - sec) * 1e6)
    return "%09X%05X%04X%04X" % (sec, usec, os.getpid() & 0xFFFF,
                                 _qid_counter[0] & 0xFFFF)


def queue_file_bytes(qid, arrival, sender, rcpts, message):
    """A queue file holding message (LF line ends) for rcpts."""
    env = "I %s\nT %d.%06d\nS %s\nA 127.0.0.1\nP ESMTP\n" % (
        qid, int(arrival), int((arrival - int(arrival)) * 1e6), sender)
    for addr in rcpts:
        env += "R - %s\n" % addr
    env += "M\n"
    magic = "POSTERN-QUEUE 1\n"
    zrec_len = len("Z %012d %012d\n" % (0, 0))
    offset = len(magic) + zrec_len + len(env.encode())
    head = magic + "Z %012d %012d\n" % (offset, len(message)) + env
    return head.encode() + message


def recipient_statuses(path):
    """Status bytes of the R records of a queue file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    envelope = data.split(b"\nM\n", 1)[0]
    return [line[2:3].decode() for line in envelope.split(b"\n")
            if line.startswith(b"R ")]


def encode_attr(value):
    return (value.replace("%", "%25").replace("\n", "%0A")
            .replace("\r", "%0D").replace("\0", "%00"))


def decode_attr(value):
    return (value.replace("%0A", "\n").replace("%0D", "\r")
            .replace("%00", "\0").replace("%25", "%"))


def wire_form(message):
    """message as the server receives it after unstuffing: CRLF lines."""
    if message and not message.endswith(b"\n"):
        message += b"\n"
    return message.replace(b"\n", b"\r\n")


class ScriptServer:
    """A one-connection-at-a-time TCP server on 127.0.0.1 that sends
    greeting, then replies to each command line with replies[VERB] (the
    line's first word, uppercase), and records the lines it received."""

    def __init__(self, greeting, replies):
        self.greeting = greeting
        self.replies = replies
        self.lines = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    self._session(conn)
                except OSError:
                    pass

    def _session(self, conn):
        conn.sendall(self.greeting)
        rfile = conn.makefile("rb")
        in_data = False
        for raw in rfile:
            self.lines.append(raw)
            if in_data:
                if raw == b".\r\n":
                    in_data = False
                    conn.sendall(self.replies.get("END", b"250 2.0.0 Ok\r\n"))
                continue
            verb = raw.split(b" ", 1)[0].strip().upper().decode()
            reply = self.replies.get(verb, b"250 Ok\r\n")
            conn.sendall(reply)
            if verb == "DATA" and reply.startswith(b"354"):
                in_data = True
            if verb == "QUIT":
                return

    def close(self):
        self.sock.close()


class Agent:
    """The smtp agent with a private configuration and queue, serving
    requests on a UNIX socket the way master would pass it."""

    def __init__(self, extra_cf=None):
        self.dir = tempfile.mkdtemp(prefix="postern-smtp-")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.config_dir = os.path.join(self.dir, "etc")
        self.log_file = os.path.join(self.dir, "maillog")
        os.makedirs(os.path.join(self.queue_dir, "active"))
        os.makedirs(self.config_dir)
        main_cf = {
            "myhostname": "client.example.test",
            "queue_directory": self.queue_dir,
            "maillog_file": self.log_file,
            "mail_owner": pwd.getpwuid(os.getuid()).pw_name,
            "smtp_connection_cache_time_limit": "1s",
            "smtp_helo_timeout": "5s",
            "smtp_mail_timeout": "5s",
            "smtp_rcpt_timeout": "5s",
            "smtp_data_init_timeout": "5s",
            "smtp_data_done_timeout": "5s",
            "smtp_quit_timeout": "5s",
            "max_idle": "30s",
        }
        main_cf.update(extra_cf or {})
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            for name, value in sorted(main_cf.items()):
                f.write("%s = %s\n" % (name, value))
        self.socket_path = os.path.join(self.dir, "smtp.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        self.listener.listen(16)
        self.status_read, self.status_write = os.pipe()
        listen_fd, status_fd = self.listener.fileno(), self.status_write

        def place_fds():
            # Master's layout: the listener at 3, the status pipe at 4.
            tmp_listen = os.dup(listen_fd)
            tmp_status = os.dup(status_fd)
            os.dup2(tmp_listen, 3)
            os.dup2(tmp_status, 4)
            # os.dup() gives close-on-exec descriptors, and dup2() onto
            # the same number leaves that flag set.
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.stderr_file = os.path.join(self.dir, "stderr")
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(
                [SMTP_AGENT, "-c", self.config_dir, "-n", "smtp", "-t", "unix"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, close_fds=False, preexec_fn=place_fds)

    def queue(self, sender, rcpts, message):
        """Write active/QID; return (qid, path)."""
        arrival = time.time()
        qid = new_qid(arrival)
        path = os.path.join(self.queue_dir, "active", qid)
        with open(path, "wb") as f:
            f.write(queue_file_bytes(qid, arrival, sender, rcpts, message))
        return qid, path

    def request(self, qid, sender, nexthop, rcpts, close_early=False):
        """Send one request; return {index: (status, dsn, text)}."""
        items = [("queue_id", qid), ("queue_file", "active/" + qid),
                 ("sender", sender), ("transport", "smtp"),
                 ("nexthop", nexthop)]
        items += [("rcpt", "%d %s" % (i, addr)) for i, addr in rcpts]
        record = "".join("%s=%s\n" % (n, encode_attr(v)) for n, v in items)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(self.socket_path)
            conn.sendall((record + "\n").encode())
            if close_early:
                return None
            data = b""
            deadline = time.monotonic() + 30
            conn.settimeout(0.2)
            while not data.endswith(b"\n\n"):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "no reply from the agent (exit status %s); log:\n%s"
                        % (self.proc.poll(), self.log_text()[-3000:]))
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                data += chunk
        results = {}
        for line in data.decode().split("\n"):
            if not line:
                continue
            name, value = line.split("=", 1)
            if name == "result":
                index, status, dsn, text = decode_attr(value).split(" ", 3)
                results[int(index)] = (status, dsn, text)
        return results

    def log_text(self):
        """The maillog_file, then the agent's standard error."""
        text = ""
        for path in (self.log_file, self.stderr_file):
            try:
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.listener.close()
        os.close(self.status_read)
        os.close(self.status_write)
        if os.environ.get("POSTERN_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


MESSAGE = (b"From: alice@example.test\nTo: bob@remote.test\n"
           b"Subject: dots and 8-bit\n\n"
           b"first line\n.starts with a dot\n..two dots\n.\n"
           b"caf\xc3\xa9\n" + b"x" * 998 + b"\nno final newline")


@unittest.skipUnless(os.path.exists(SMTP_AGENT), "smtp/smtp is not built")
class AgentTest(unittest.TestCase):

    def setUp(self):
        self.agent = Agent()
        self.sink = SmtpSink()
        self.nexthop = "[127.0.0.1]:%d" % self.sink.port

    def tearDown(self):
        self.agent.stop()
        self.sink.close()

    def test_relay_byte_exact(self):
        qid, path = self.agent.queue("alice@example.test", ["bob@remote.test"],
                                     MESSAGE)
        results = self.agent.request(qid, "alice@example.test", self.nexthop,
                                     [(0, "bob@remote.test")])
        self.assertEqual(results[0][0], "sent", results)
        self.assertEqual(results[0][1], "2.0.0")
        self.assertEqual(results[0][2], "250 2.0.0 Ok: queued")
        mail_from, rcpts, data = self.sink.wait_for(1)[0]
        self.assertEqual(mail_from, "alice@example.test")
        self.assertEqual(rcpts, ["bob@remote.test"])
        self.assertEqual(data, wire_form(MESSAGE))
        self.assertEqual(recipient_statuses(path), ["D"])
        mail_lines = [c for c in self.sink.commands if c.startswith("MAIL")]
        self.assertEqual(mail_lines, ["MAIL FROM:<alice@example.test> SIZE=%d "
                                      "BODY=8BITMIME" % len(MESSAGE)])
        self.assertIn("%s: to=<bob@remote.test>, relay=127.0.0.1[127.0.0.1]:%d"
                      % (qid, self.sink.port), self.agent.log_text())
        self.assertIn("status=sent (250 2.0.0 Ok: queued)", self.agent.log_text())

    def test_null_sender_and_quoted_local_part(self):
        qid, _ = self.agent.queue("", ["john doe@remote.test"], b"x\n")
        results = self.agent.request(qid, "", self.nexthop,
                                     [(0, "john doe@remote.test")])
        self.assertEqual(results[0][0], "sent", results)
        self.assertIn("MAIL FROM:<> SIZE=2 BODY=8BITMIME", self.sink.commands)
        self.assertIn('RCPT TO:<"john doe"@remote.test>', self.sink.commands)

    def test_connection_reused_then_closed(self):
        for n in range(2):
            qid, _ = self.agent.queue("a@example.test", ["b@remote.test"], b"m\n")
            results = self.agent.request(qid, "a@example.test", self.nexthop,
                                         [(0, "b@remote.test")])
            self.assertEqual(results[0][0], "sent", results)
        self.sink.wait_for(2)
        self.assertEqual(self.sink.connections, 1)
        self.assertEqual(self.sink.commands.count("RSET"), 1)
        # smtp_connection_cache_time_limit is 1s, after which the agent sends QUIT.
        deadline = time.monotonic() + 5
        while "QUIT" not in self.sink.commands and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("QUIT", self.sink.commands)

    def test_other_nexthop_closes_cached_connection(self):
        other = SmtpSink()
        try:
            qid, _ = self.agent.queue("a@example.test", ["b@remote.test"], b"m\n")
            self.agent.request(qid, "a@example.test", self.nexthop,
                               [(0, "b@remote.test")])
            qid, _ = self.agent.queue("a@example.test", ["c@other.test"], b"m\n")
            results = self.agent.request(qid, "a@example.test",
                                         "[127.0.0.1]:%d" % other.port,
                                         [(0, "c@other.test")])
            self.assertEqual(results[0][0], "sent", results)
            self.assertEqual(other.wait_for(1)[0][1], ["c@other.test"])
            self.assertIn("QUIT", self.sink.commands)
        finally:
            other.close()

    def test_rcpt_defer_and_bounce(self):
        replies = {"ok@remote.test": "250 2.1.5 Ok",
                   "later@remote.test": "451 4.3.0 Try again later",
                   "gone@remote.test": "550 5.1.1 No such user"}
        self.sink.rcpt_reply = lambda rcpt: replies[rcpt]
        rcpts = ["ok@remote.test", "later@remote.test", "gone@remote.test"]
        qid, path = self.agent.queue("a@example.test", rcpts, b"m\n")
        results = self.agent.request(qid, "a@example.test", self.nexthop,
                                     list(enumerate(rcpts)))
        self.assertEqual(results[0][:2], ("sent", "2.0.0"))
        self.assertEqual(results[1], (
            "defer", "4.3.0", "host 127.0.0.1[127.0.0.1] said: 451 4.3.0 "
            "Try again later (in reply to RCPT TO command)"))
        self.assertEqual(results[2], (
            "bounce", "5.1.1", "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 "
            "No such user (in reply to RCPT TO command)"))
        self.assertEqual(self.sink.wait_for(1)[0][1], ["ok@remote.test"])
        self.assertEqual(recipient_statuses(path), ["D", "-", "-"])

    def test_no_recipient_accepted(self):
        self.sink.rcpt_reply = lambda rcpt: "550 5.1.1 No such user"
        qid, path = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        results = self.agent.request(qid, "a@example.test", self.nexthop,
                                     [(0, "x@remote.test")])
        self.assertEqual(results[0][:2], ("bounce", "5.1.1"))
        self.assertEqual(self.sink.messages, [])
        self.assertIn("RSET", self.sink.commands)
        self.assertEqual(recipient_statuses(path), ["-"])

    def test_data_rejected(self):
        self.sink.data_reply = "554 5.7.1 Message rejected"
        qid, path = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        results = self.agent.request(qid, "a@example.test", self.nexthop,
                                     [(0, "x@remote.test")])
        self.assertEqual(results[0], (
            "bounce", "5.7.1", "host 127.0.0.1[127.0.0.1] said: 554 5.7.1 "
            "Message rejected (in reply to end of DATA command)"))
        self.assertEqual(recipient_statuses(path), ["-"])

    def test_mail_from_deferred(self):
        self.sink.mail_reply = "421 4.7.0 Too busy"
        qid, _ = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        results = self.agent.request(qid, "a@example.test", self.nexthop,
                                     [(0, "x@remote.test")])
        self.assertEqual(results[0][:2], ("defer", "4.7.0"))
        self.assertIn("(in reply to MAIL FROM command)", results[0][2])

    def test_size_over_server_limit(self):
        self.sink.size_limit = 10
        qid, _ = self.agent.queue("a@example.test", ["x@remote.test"], b"y" * 11)
        results = self.agent.request(qid, "a@example.test", self.nexthop,
                                     [(0, "x@remote.test")])
        self.assertEqual(results[0][:2], ("bounce", "5.3.4"))
        self.assertIn("exceeds size limit 10", results[0][2])
        self.assertFalse([c for c in self.sink.commands if c.startswith("MAIL")])

    def test_connect_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        qid, _ = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        results = self.agent.request(qid, "a@example.test",
                                     "[127.0.0.1]:%d" % port,
                                     [(0, "x@remote.test")])
        self.assertEqual(results[0], (
            "defer", "4.4.1", "connect to 127.0.0.1[127.0.0.1]:%d: "
            "Connection refused" % port))
        self.assertIn("relay=none", self.agent.log_text())

    def test_qmgr_gone_drops_request(self):
        qid, path = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        self.agent.request(qid, "a@example.test", self.nexthop,
                           [(0, "x@remote.test")], close_early=True)
        # The agent serves one request at a time, so the reply to the next
        # request shows that the dropped one is finished.
        qid2, _ = self.agent.queue("a@example.test", ["y@remote.test"], b"m\n")
        results = self.agent.request(qid2, "a@example.test", self.nexthop,
                                     [(0, "y@remote.test")])
        self.assertEqual(results[0][0], "sent")
        self.assertEqual([m[1] for m in self.sink.wait_for(1)], [["y@remote.test"]])
        self.assertEqual(recipient_statuses(path), ["-"])
        self.assertIn("%s: qmgr closed the request connection" % qid,
                      self.agent.log_text())

    def test_mismatched_recipient_deferred(self):
        qid, path = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        results = self.agent.request(qid, "a@example.test", self.nexthop,
                                     [(0, "other@remote.test"),
                                      (5, "x@remote.test")])
        self.assertEqual(results[0][:2], ("defer", "4.3.0"))
        self.assertEqual(results[5][:2], ("defer", "4.3.0"))
        self.assertEqual(self.sink.messages, [])


@unittest.skipUnless(os.path.exists(SMTP_AGENT), "smtp/smtp is not built")
class AgentScriptedServerTest(unittest.TestCase):
    """Servers that misbehave or offer no ESMTP extensions."""

    def setUp(self):
        self.agent = Agent()
        self.server = None

    def tearDown(self):
        self.agent.stop()
        if self.server is not None:
            self.server.close()

    def deliver(self, greeting, replies, message=b"m\n"):
        self.server = ScriptServer(greeting, replies)
        qid, path = self.agent.queue("a@example.test", ["x@remote.test"], message)
        results = self.agent.request(qid, "a@example.test",
                                     "[127.0.0.1]:%d" % self.server.port,
                                     [(0, "x@remote.test")])
        return results[0], path

    def test_garbage_greeting(self):
        result, _ = self.deliver(b"hello there\r\n", {})
        self.assertEqual(result[:2], ("defer", "4.5.0"))
        self.assertIn("malformed reply from 127.0.0.1[127.0.0.1] while "
                      "receiving the initial server greeting", result[2])

    def test_too_many_reply_lines(self):
        result, _ = self.deliver(b"220-x\r\n" * 150 + b"220 x\r\n", {})
        self.assertEqual(result[:2], ("defer", "4.5.0"))
        self.assertIn("too many reply lines", result[2])

    def test_over_long_reply_line(self):
        result, _ = self.deliver(b"220 " + b"a" * 5000 + b"\r\n", {})
        self.assertEqual(result[:2], ("defer", "4.5.0"))
        self.assertIn("reply line too long", result[2])

    def test_greeting_rejected(self):
        result, _ = self.deliver(b"554 5.3.2 Not accepting mail\r\n", {})
        self.assertEqual(result[:2], ("bounce", "5.3.2"))
        self.assertIn("(in reply to the greeting)", result[2])

    def test_greeting_deferred(self):
        result, _ = self.deliver(b"421 4.3.2 Busy\r\n", {})
        self.assertEqual(result[:2], ("defer", "4.3.2"))

    def test_helo_fallback_without_pipelining(self):
        replies = {"EHLO": b"502 5.5.2 Unknown command\r\n",
                   "HELO": b"250 old.example\r\n",
                   "DATA": b"354 go on\r\n"}
        message = b"Subject: t\n\n.dot\nend\n"
        result, path = self.deliver(b"220 old.example\r\n", replies, message)
        self.assertEqual(result[0], "sent", result)
        lines = self.server.lines
        self.assertEqual(lines[0], b"EHLO client.example.test\r\n")
        self.assertEqual(lines[1], b"HELO client.example.test\r\n")
        # No SIZE or BODY without EHLO; the body is dot-stuffed.
        self.assertEqual(lines[2], b"MAIL FROM:<a@example.test>\r\n")
        self.assertEqual(lines[3], b"RCPT TO:<x@remote.test>\r\n")
        self.assertEqual(lines[4], b"DATA\r\n")
        self.assertEqual(b"".join(lines[5:9]),
                         b"Subject: t\r\n\r\n..dot\r\nend\r\n")
        self.assertEqual(lines[9], b".\r\n")
        self.assertEqual(recipient_statuses(path), ["D"])

    def test_lost_connection_during_data(self):
        replies = {"DATA": b"354 go on\r\n"}
        self.server = ScriptServer(b"220 x\r\n", replies)
        self.server._session = self._close_after_data
        qid, path = self.agent.queue("a@example.test", ["x@remote.test"], b"m\n")
        results = self.agent.request(qid, "a@example.test",
                                     "[127.0.0.1]:%d" % self.server.port,
                                     [(0, "x@remote.test")])
        self.assertEqual(results[0][:2], ("defer", "4.4.2"))
        self.assertIn("lost connection with 127.0.0.1[127.0.0.1] while sending "
                      "end of data", results[0][2])
        self.assertEqual(recipient_statuses(path), ["-"])

    def _close_after_data(self, conn):
        conn.sendall(b"220 x\r\n")
        rfile = conn.makefile("rb")
        in_data = False
        for raw in rfile:
            if in_data and raw == b".\r\n":
                return
            if in_data:
                continue
            if raw.startswith(b"DATA"):
                conn.sendall(b"354 go on\r\n")
                in_data = True
            else:
                conn.sendall(b"250 Ok\r\n")


class RelayTest(unittest.TestCase):
    """Mail from inside mynetworks relayed through a whole instance."""

    def setUp(self):
        for program in ("master/master", "smtpd/smtpd", "qmgr/qmgr", "smtp/smtp"):
            if not os.path.exists(os.path.join(BUILD_DIR, program)):
                self.skipTest("%s is not built" % program)
        self.sink = SmtpSink()
        self.inst = Instance(main_cf={
            "relayhost": "[127.0.0.1]:%d" % self.sink.port,
            "smtp_connection_cache_time_limit": "10s",
        })
        self.inst.start()

    def tearDown(self):
        self.inst.stop()
        self.sink.close()

    def send(self, rcpts, body=b"hello\r\n"):
        message = (b"From: alice@example.test\r\nSubject: relay\r\n\r\n" + body)
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port,
                          source_address=("127.0.0.2", 0), timeout=20) as s:
            s.sendmail("alice@example.test", rcpts, message)
        return message

    def test_relay_to_sink_byte_exact(self):
        message = self.send(["bob@remote.test"],
                            b".leading dot\r\ncaf\xc3\xa9\r\n" + b"z" * 998 + b"\r\n")
        mail_from, rcpts, data = self.sink.wait_for(1)[0]
        self.assertEqual(mail_from, "alice@example.test")
        self.assertEqual(rcpts, ["bob@remote.test"])
        self.assertTrue(data.startswith(b"Received: "), data[:200])
        self.assertTrue(data.endswith(message), data[-300:])

    def test_transport_maps_nexthop(self):
        self.inst.stop()
        other = SmtpSink()
        try:
            self.inst = Instance(main_cf={
                "transport_maps": "inline:{ routed.test=smtp:[127.0.0.1]:%d }"
                                  % other.port,
            })
            self.inst.start()
            self.send(["carol@routed.test"])
            self.assertEqual(other.wait_for(1)[0][1], ["carol@routed.test"])
        finally:
            other.close()

    def test_two_messages_share_a_connection(self):
        self.send(["one@remote.test"])
        self.sink.wait_for(1)
        self.send(["two@remote.test"])
        messages = self.sink.wait_for(2)
        self.assertEqual([m[1] for m in messages],
                         [["one@remote.test"], ["two@remote.test"]])
        self.assertEqual(self.sink.connections, 1)

    def test_per_recipient_defer_and_bounce(self):
        replies = {"ok@remote.test": "250 2.1.5 Ok",
                   "later@remote.test": "451 4.3.0 Try again later",
                   "gone@remote.test": "550 5.1.1 No such user"}
        self.sink.rcpt_reply = lambda rcpt: replies[rcpt]
        self.send(list(replies))
        self.assertEqual(self.sink.wait_for(1)[0][1], ["ok@remote.test"])
        # The bounce for gone@ goes back to alice's mailbox.
        bounce = self.inst.wait_for_messages("alice", 1)[0]
        self.assertIn(b"gone@remote.test", bounce)
        self.assertIn(b"550 5.1.1 No such user", bounce)
        self.assertNotIn(b"later@remote.test", bounce)
        deadline = time.monotonic() + 10
        listing = ""
        while time.monotonic() < deadline:
            listing = self.inst.postern("queue").stdout
            if "Try again later" in listing:
                break
            time.sleep(0.1)
        self.assertIn("later@remote.test", listing)
        self.assertIn("451 4.3.0 Try again later", listing)


if __name__ == "__main__":
    unittest.main()
