"""End-to-end tests of delivery status notifications (RFC 3461, 3464):
bounces as multipart/report, RET, ENVID, ORCPT and NOTIFY, success
notices, delay warnings, and DSN parameters passed on by the smtp agent.

Mail goes in through smtpd from 127.0.0.2 (inside mynetworks), out
through the smtp agent to a test sink for sink.test, and reports come
back to alice's virtual mailbox.
"""

import email
import email.policy
import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Instance, SmtpSink  # noqa: E402
from harness import _SinkHandler  # noqa: E402

ORIGINAL = (b"From: Alice <alice@example.test>\r\n"
            b"To: bob@sink.test\r\n"
            b"Subject: dsn test\r\n"
            b"\r\n"
            b"first body line\r\n"
            b"--looks-like-a-boundary\r\n"
            b"last body line\r\n")


class DsnSinkHandler(_SinkHandler):
    """A sink session whose EHLO reply also offers DSN."""

    def send_line(self, line):
        if line == "250-PIPELINING":
            super().send_line("250-DSN")
        super().send_line(line)


def submit(inst, sender, rcpts, message, mail_options=(), rcpt_options=()):
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=30,
                      source_address=("127.0.0.2", 0)) as client:
        client.ehlo("client.test")
        client.sendmail(sender, rcpts, message, list(mail_options),
                        list(rcpt_options))


def wait_until(predicate, timeout, description, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("no %s after %s s; log:\n%s"
                         % (description, timeout, log()[-4000:]))


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def status_groups(report):
    """The per-message and per-recipient field groups of a report."""
    part = report.get_payload()[1]
    return part.get_payload()


def third_part_bytes(raw, report):
    """The raw bytes of the third part's body: from after its header to
    the line break before the closing boundary."""
    boundary = report.get_param("boundary").encode()
    start = raw.index(b"--" + boundary + b"\n", raw.index(
        b"Content-Type: message/delivery-status"))
    body = raw.index(b"\n\n", start) + 2
    end = raw.index(b"\n--" + boundary + b"--", body)
    return raw[start:body], raw[body:end]


class DsnCase(unittest.TestCase):
    handler = None
    extra_cf = {}

    def setUp(self):
        self.sink = SmtpSink()
        if self.handler is not None:
            self.sink.server.RequestHandlerClass = self.handler
        self.addCleanup(self.sink.close)
        main_cf = {
            "transport_maps": "inline:{ sink.test=smtp:[127.0.0.1]:%d }"
                              % self.sink.port,
        }
        main_cf.update(self.extra_cf)
        self.inst = Instance(main_cf=main_cf)
        self.addCleanup(self.inst.stop)
        self.inst.start()

    def report_for(self, user="alice", count=1):
        raw = self.inst.wait_for_messages(user, count)[-1]
        self.assertTrue(raw.startswith(b"Return-Path: <>\n"), raw[:200])
        return raw, parse(raw)


class BounceTest(DsnCase):
    def setUp(self):
        super().setUp()
        self.sink.rcpt_reply = (
            lambda rcpt: "550 5.1.1 <%s>: Recipient address rejected" % rcpt)

    def test_bounce_mime_structure(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL)
        raw, report = self.report_for()
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        self.assertEqual(report["Auto-Submitted"], "auto-replied")
        self.assertEqual(report["From"],
                         "MAILER-DAEMON@mail.example.test (Mail Delivery System)")
        self.assertEqual(report["To"], "<alice@example.test>")
        self.assertRegex(report["Message-ID"], r"^<[0-9A-F]{22}@mail\.example\.test>$")
        self.assertIsNotNone(report["Date"])
        parts = report.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status",
                          "message/rfc822"])
        self.assertIn("<bob@sink.test>: 5.1.1", parts[0].get_payload())
        self.assertNotIn(report.get_param("boundary").encode(), ORIGINAL)

    def test_bounce_status_fields(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL)
        _, report = self.report_for()
        per_message, per_rcpt = status_groups(report)
        self.assertEqual(per_message["Reporting-MTA"], "dns; mail.example.test")
        self.assertRegex(per_message["X-Postern-Queue-ID"], r"^[0-9A-F]{22}$")
        self.assertIsNotNone(per_message["Arrival-Date"])
        self.assertIsNone(per_message["Original-Envelope-Id"])
        self.assertEqual(per_rcpt["Final-Recipient"], "rfc822; bob@sink.test")
        self.assertEqual(per_rcpt["Action"], "failed")
        self.assertEqual(per_rcpt["Status"], "5.1.1")
        self.assertEqual(per_rcpt["Remote-MTA"], "dns; 127.0.0.1")
        self.assertEqual(per_rcpt["Diagnostic-Code"],
                         "smtp; 550 5.1.1 <bob@sink.test>: Recipient address rejected")
        self.assertIsNotNone(per_rcpt["Last-Attempt-Date"])
        self.assertIsNone(per_rcpt["Original-Recipient"])

    def test_bounce_original_byte_exact(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL)
        raw, report = self.report_for()
        head, body = third_part_bytes(raw, report)
        self.assertIn(b"Content-Type: message/rfc822\n", head)
        self.assertTrue(body.startswith(b"Received: "), body[:100])
        self.assertTrue(body.endswith(ORIGINAL.replace(b"\r\n", b"\n")),
                        body[-300:])
        attached = report.get_payload()[2].get_payload()[0]
        self.assertEqual(attached["Subject"], "dsn test")

    def test_ret_hdrs_attaches_header_only(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL,
               mail_options=["RET=HDRS"])
        raw, report = self.report_for()
        self.assertEqual(report.get_payload()[2].get_content_type(),
                         "text/rfc822-headers")
        _, body = third_part_bytes(raw, report)
        self.assertTrue(body.endswith(b"Subject: dsn test\n"), body[-200:])
        self.assertNotIn(b"first body line", raw)

    def test_large_message_attaches_header_only(self):
        self.inst.stop()
        self.inst = Instance(main_cf={
            "transport_maps": "inline:{ sink.test=smtp:[127.0.0.1]:%d }"
                              % self.sink.port,
            "bounce_size_limit": "100",
        })
        self.addCleanup(self.inst.stop)
        self.inst.start()
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL)
        raw, report = self.report_for()
        self.assertEqual(report.get_payload()[2].get_content_type(),
                         "text/rfc822-headers")
        self.assertNotIn(b"first body line", raw)

    def test_envid_and_orcpt_reported(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL,
               mail_options=["ENVID=QQ+2B123"],
               rcpt_options=["ORCPT=rfc822;Bob+2BX@sink.test"])
        _, report = self.report_for()
        per_message, per_rcpt = status_groups(report)
        self.assertEqual(per_message["Original-Envelope-Id"], "QQ+123")
        self.assertEqual(per_rcpt["Original-Recipient"],
                         "rfc822; Bob+X@sink.test")
        self.assertEqual(per_rcpt["Final-Recipient"], "rfc822; bob@sink.test")

    def test_notify_never_sends_no_bounce(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"],
               b"Subject: never\r\n\r\nx\r\n", rcpt_options=["NOTIFY=NEVER"])
        # A second failure with default NOTIFY shows when the first one
        # would have been reported.
        submit(self.inst, "alice@example.test", ["carol@sink.test"],
               b"Subject: default\r\n\r\nx\r\n")
        _, report = self.report_for()
        time.sleep(1)
        self.assertEqual(len(self.inst.messages("alice")), 1)
        self.assertEqual(status_groups(report)[1]["Final-Recipient"],
                         "rfc822; carol@sink.test")
        self.assertEqual(self.inst.log_text().count("status=bounced"), 2)

    def test_null_sender_gets_no_bounce(self):
        submit(self.inst, "<>", ["bob@sink.test"], b"Subject: n\r\n\r\nx\r\n")
        wait_until(lambda: "no bounce for a message from the null sender"
                   in self.inst.log_text(), 15, "null sender log line",
                   self.inst.log_text)
        self.assertEqual(self.inst.messages("alice"), [])


class SuccessTest(DsnCase):
    def test_notify_success_local_delivered(self):
        submit(self.inst, "alice@example.test", ["bob@example.test"],
               b"Subject: to bob\r\n\r\nhello\r\n",
               rcpt_options=["NOTIFY=SUCCESS"])
        self.inst.wait_for_messages("bob", 1)
        _, report = self.report_for()
        self.assertEqual(report["Subject"], "Successful Mail Delivery Report")
        _, per_rcpt = status_groups(report)
        self.assertEqual(per_rcpt["Action"], "delivered")
        self.assertEqual(per_rcpt["Status"], "2.0.0")
        self.assertEqual(per_rcpt["Final-Recipient"], "rfc822; bob@example.test")
        self.assertEqual(report.get_payload()[2].get_content_type(),
                         "text/rfc822-headers")

    def test_without_notify_no_success_notice(self):
        submit(self.inst, "alice@example.test", ["bob@example.test"],
               b"Subject: quiet\r\n\r\nhello\r\n")
        self.inst.wait_for_messages("bob", 1)
        time.sleep(1)
        self.assertEqual(self.inst.messages("alice"), [])

    def test_relayed_to_server_without_dsn(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL,
               rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        self.sink.wait_for(1)
        _, report = self.report_for()
        _, per_rcpt = status_groups(report)
        self.assertEqual(per_rcpt["Action"], "relayed")
        self.assertEqual(per_rcpt["Status"], "2.0.0")
        # The sink offers no DSN, so nothing was passed on.
        mail = [c for c in self.sink.commands if c.upper().startswith("MAIL")]
        rcpt = [c for c in self.sink.commands if c.upper().startswith("RCPT")]
        self.assertNotIn("NOTIFY", rcpt[0])
        self.assertNotIn("RET=", mail[0])


class PassOnTest(DsnCase):
    handler = DsnSinkHandler

    def test_dsn_parameters_passed_on(self):
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL,
               mail_options=["RET=HDRS", "ENVID=env+2B1"],
               rcpt_options=["NOTIFY=SUCCESS,DELAY",
                             "ORCPT=rfc822;bob@sink.test"])
        self.sink.wait_for(1)
        mail = [c for c in self.sink.commands if c.upper().startswith("MAIL")]
        rcpt = [c for c in self.sink.commands if c.upper().startswith("RCPT")]
        self.assertRegex(mail[0], r"^MAIL FROM:<alice@example\.test>.* "
                                  r"RET=HDRS ENVID=env\+2B1$")
        self.assertEqual(rcpt[0], "RCPT TO:<bob@sink.test> "
                                  "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob@sink.test")
        # The next hop took over the success notice.
        time.sleep(1)
        self.assertEqual(self.inst.messages("alice"), [])

    def test_smtpd_advertises_dsn(self):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=10) as c:
            c.ehlo("client.test")
            self.assertTrue(c.has_extn("dsn"))


class DelayWarningTest(DsnCase):
    extra_cf = {"delay_warning_time": "1s"}

    def test_delay_warning_sent_once(self):
        self.sink.rcpt_reply = lambda rcpt: "451 4.3.2 Mailbox busy"
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL)
        deferred = os.path.join(self.inst.queue_dir, "deferred")
        wait_until(lambda: os.listdir(deferred), 15, "a deferred message",
                   self.inst.log_text)
        time.sleep(1.2)
        self.assertEqual(self.inst.postern("flush").returncode, 0)
        raw, report = self.report_for()
        self.assertEqual(report["Subject"], "Delayed Mail (still being retried)")
        _, per_rcpt = status_groups(report)
        self.assertEqual(per_rcpt["Action"], "delayed")
        self.assertEqual(per_rcpt["Status"], "4.3.2")
        self.assertEqual(per_rcpt["Diagnostic-Code"],
                         "smtp; 451 4.3.2 Mailbox busy")
        self.assertIsNotNone(per_rcpt["Will-Retry-Until"])
        self.assertEqual(report.get_payload()[2].get_content_type(),
                         "text/rfc822-headers")

        # A later deferral sends no second warning.
        attempts = self.inst.log_text().count("status=deferred")
        self.assertEqual(self.inst.postern("flush").returncode, 0)
        wait_until(lambda: self.inst.log_text().count("status=deferred")
                   > attempts, 15, "another attempt", self.inst.log_text)
        time.sleep(1)
        self.assertEqual(len(self.inst.messages("alice")), 1)

    def test_notify_failure_only_gets_no_warning(self):
        self.sink.rcpt_reply = lambda rcpt: "451 4.3.2 Mailbox busy"
        submit(self.inst, "alice@example.test", ["bob@sink.test"], ORIGINAL,
               rcpt_options=["NOTIFY=FAILURE"])
        deferred = os.path.join(self.inst.queue_dir, "deferred")
        wait_until(lambda: os.listdir(deferred), 15, "a deferred message",
                   self.inst.log_text)
        time.sleep(1.2)
        attempts = self.inst.log_text().count("status=deferred")
        self.assertEqual(self.inst.postern("flush").returncode, 0)
        wait_until(lambda: self.inst.log_text().count("status=deferred")
                   > attempts, 15, "another attempt", self.inst.log_text)
        time.sleep(1)
        self.assertEqual(self.inst.messages("alice"), [])


if __name__ == "__main__":
    unittest.main()
