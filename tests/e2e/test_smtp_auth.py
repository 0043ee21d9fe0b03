"""End-to-end tests of SMTP AUTH in smtpd, the restriction lists and AUTH
in the smtp agent, with real clients.

One TLS instance serves most tests: a sasldb made with saslpasswd2, the
default listener on smtp_port (STARTTLS offered, AUTH after TLS), the
harness's wrapper-mode listener on smtps_port, and a listener configured
like the shipped submission service (TLS and AUTH required before any
mail) on sub_port. Mail to remote.test goes to a SmtpSink through
relayhost. Tests that fail logins use their own client address, because
authd counts failures per client address.
"""

import base64
import os
import pwd
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD_DIR, SASLPASSWD2, Instance, SmtpSink,  # noqa: E402
                     create_sasldb, free_port, is_root)

AUTHD = os.path.join(BUILD_DIR, "authd", "authd")
DOMAIN = "example.test"
PASSWORD = "Plum-7e2e-Qx9vLw"
LOCKOUT_FAILURES = 10
LOCKOUT_WINDOW_S = 3
AUTH_FAILED = "5.7.8 Error: authentication failed: authentication failure"


def make_sasldb(inst, users):
    """Create a sasldb for users and the SASL configuration of authd."""
    sasldb = create_sasldb(inst, users, PASSWORD, DOMAIN)
    sasl_dir = os.path.join(inst.config_dir, "sasl")
    os.makedirs(sasl_dir)
    with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as f:
        f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                "sasldb_path: %s\nmech_list: PLAIN LOGIN NTLM\n" % sasldb)


def message(subject):
    return ("From: alice@example.test\r\nTo: friend@remote.test\r\n"
            "Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))


def plain(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class SmtpAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink()
        cls.sub_port = free_port()
        cls.access_file = tempfile.NamedTemporaryFile(
            "w", prefix="postern-access-", suffix=".pcre", delete=False)
        cls.access_file.write("/^spammer@bad\\.test$/ REJECT Known spam source\n"
                              "/@worse\\.test$/ 550 5.7.0 Not from there\n")
        cls.access_file.close()
        os.chmod(cls.access_file.name, 0o644)
        submission = (
            "127.0.0.1:%d inet n - n - 1 smtpd\n"
            "  -o syslog_name=postern/sub\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            "  -o smtpd_sasl_auth_enable=yes\n"
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
            "  -o smtpd_sender_restrictions=reject_sender_login_mismatch\n"
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
            % cls.sub_port)
        cls.inst = Instance(tls=True, master_cf_extra=submission, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_local_domain": DOMAIN,
            "smtpd_sender_login_maps":
                "inline:{alice@example.test=alice@example.test}",
            "smtpd_client_restrictions": "check_client_access inline:{127.0.0.5=REJECT}",
            "smtpd_sender_restrictions": "check_sender_access pcre:" + cls.access_file.name,
            "relayhost": "[127.0.0.1]:%d" % cls.sink.port,
            "authd_failure_delay": "10ms",
            "authd_lockout_failures": str(LOCKOUT_FAILURES),
            "authd_lockout_window": "%ds" % LOCKOUT_WINDOW_S,
        })
        make_sasldb(cls.inst, ["alice", "bob", "carol"])
        cls.inst.start()
        cls.inst.wait_for_service("authd")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.sink.close()
        os.unlink(cls.access_file.name)

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.inst.tls_ca)
        ctx.check_hostname = False
        return ctx

    def connect(self, port=None, source="127.0.0.1", starttls=True):
        client = smtplib.SMTP("127.0.0.1", port or self.inst.smtp_port,
                              source_address=(source, 0), timeout=20)
        self.addCleanup(client.close)
        client.ehlo("client.test")
        if starttls:
            client.starttls(context=self.tls_context())
            client.ehlo("client.test")
        return client

    def wait_sink(self, subject):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self.sink.lock:
                for item in self.sink.messages:
                    if ("Subject: %s\r\n" % subject).encode() in item[2]:
                        return item
            time.sleep(0.05)
        self.fail("no message %r at the sink; log:\n%s"
                  % (subject, self.inst.log_text()[-3000:]))

    # ---- smtpd AUTH with real clients

    def test_smtplib_login_starttls(self):
        client = self.connect(self.sub_port)
        code, _ = client.login("alice", PASSWORD)
        self.assertEqual(code, 235)
        client.sendmail("alice@example.test", ["friend@remote.test"],
                        message("smtplib-starttls"))
        client.quit()
        sender, rcpts, data = self.wait_sink("smtplib-starttls")
        self.assertEqual(sender, "alice@example.test")
        self.assertEqual(rcpts, ["friend@remote.test"])
        self.assertIn(b"with ESMTPSA id", data)
        self.assertNotIn(b"Authenticated sender", data)

    def test_smtplib_login_wrappermode(self):
        client = smtplib.SMTP_SSL("127.0.0.1", self.inst.smtps_port,
                                  context=self.tls_context(), timeout=20)
        self.addCleanup(client.close)
        client.ehlo("client.test")
        self.assertEqual(client.login("alice", PASSWORD)[0], 235)
        client.sendmail("alice@example.test", ["friend@remote.test"],
                        message("smtplib-smtps"))
        client.quit()
        self.assertIn(b"ESMTPSA", self.wait_sink("smtplib-smtps")[2])

    def test_curl_user_ssl_reqd(self):
        msg = os.path.join(self.inst.dir, "curl-msg")
        with open(msg, "w") as f:
            f.write(message("curl-auth"))
        result = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", "--cacert", self.inst.tls_ca,
             "--resolve", "mail.example.test:%d:127.0.0.1" % self.sub_port,
             "--url", "smtp://mail.example.test:%d" % self.sub_port,
             "--user", "alice@%s:%s" % (DOMAIN, PASSWORD),
             "--mail-from", "alice@example.test", "--mail-rcpt", "friend@remote.test",
             "--upload-file", msg], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.wait_sink("curl-auth")

    def swaks(self, mechanism, subject):
        result = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.sub_port), "--tls",
             "--auth", mechanism, "--auth-user", "alice", "--auth-password", PASSWORD,
             "--from", "alice@example.test", "--to", "friend@remote.test",
             "--header", "Subject: %s" % subject, "--helo", "client.test"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("235 2.7.0 Authentication successful", result.stdout)
        self.wait_sink(subject)

    def test_swaks_auth_plain(self):
        self.swaks("PLAIN", "swaks-plain")

    def test_swaks_auth_login(self):
        self.swaks("LOGIN", "swaks-login")

    def test_msmtp_auth_starttls(self):
        result = subprocess.run(
            ["msmtp", "--host=127.0.0.1", "--port=%d" % self.sub_port,
             "--tls=on", "--tls-starttls=on", "--tls-certcheck=off",
             "--auth=plain", "--user=alice", "--passwordeval=echo " + PASSWORD,
             "--domain=client.test", "--from=alice@example.test",
             "friend@remote.test"],
            input=message("msmtp-auth"), capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.wait_sink("msmtp-auth")

    # ---- AUTH replies

    def test_wrong_password_and_unknown_user_same_reply(self):
        client = self.connect(source="127.0.0.4")
        wrong = client.docmd("AUTH", "PLAIN " + plain("bob", "not-the-password"))
        unknown = client.docmd("AUTH", "PLAIN " + plain("nobody", PASSWORD))
        self.assertEqual(wrong, (535, AUTH_FAILED.encode()))
        self.assertEqual(unknown, wrong)

    def test_auth_not_offered_before_starttls(self):
        client = self.connect(self.sub_port, starttls=False)
        self.assertFalse(client.has_extn("auth"))
        self.assertTrue(client.has_extn("starttls"))
        # The submission listener requires TLS for every mail command.
        code, text = client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))
        self.assertEqual(code, 530)
        # Where TLS is optional, AUTH without it gets 538.
        client = self.connect(starttls=False)
        self.assertFalse(client.has_extn("auth"))
        code, text = client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))
        self.assertEqual(code, 538)
        self.assertEqual(text, b"5.7.11 Encryption required for requested "
                               b"authentication mechanism")

    def test_ehlo_lists_legacy_line_without_ntlm(self):
        client = self.connect()
        lines = client.ehlo_resp.decode().split("\n")
        self.assertIn("AUTH PLAIN LOGIN", lines)
        self.assertIn("AUTH=PLAIN LOGIN", lines)
        self.assertNotIn("NTLM", client.ehlo_resp.decode())

    def test_auth_syntax_and_state_errors(self):
        client = self.connect()
        self.assertEqual(client.docmd("AUTH", "PLAIN *")[0], 501)
        self.assertEqual(client.docmd("AUTH", "PLAIN %%%%")[0], 501)
        self.assertEqual(client.docmd("AUTH", "PLAIN !!!!")[1][:5], b"5.5.2")
        self.assertEqual(client.docmd("AUTH", "LOGIN")[0], 334)
        self.assertEqual(client.docmd("*"), (501, b"5.7.0 Error: authentication cancelled"))
        self.assertEqual(client.docmd("AUTH", "NTLM")[0], 504)
        # "=" is an empty initial response, which PLAIN cannot accept.
        self.assertEqual(client.docmd("AUTH", "PLAIN =")[0], 535)
        # Without an initial response the server sends an empty 334.
        self.assertEqual(client.docmd("AUTH", "PLAIN"), (334, b""))
        self.assertEqual(client.docmd(plain("alice", PASSWORD))[0], 235)
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD)),
                         (503, b"5.5.1 Error: already authenticated"))
        client = self.connect()
        client.mail("alice@example.test")
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 503)

    def test_mail_auth_parameter_accepted(self):
        client = self.connect(self.sub_port)
        client.login("alice", PASSWORD)
        self.assertEqual(client.docmd("MAIL", "FROM:<alice@example.test> "
                                      "AUTH=alice+40example.test")[0], 250)

    def test_throttle_then_login_after_window(self):
        client = self.connect(source="127.0.0.3")
        replies = [client.docmd("AUTH", "PLAIN " + plain("carol", "wrong-%d" % i))[0]
                   for i in range(LOCKOUT_FAILURES)]
        self.assertEqual(replies, [535] * LOCKOUT_FAILURES)
        code, text = client.docmd("AUTH", "PLAIN " + plain("carol", PASSWORD))
        self.assertEqual(code, 454, text)
        time.sleep(LOCKOUT_WINDOW_S + 0.5)
        client = self.connect(source="127.0.0.3")
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("carol", PASSWORD))[0], 235)
        self.assertIn("locked out", self.inst.log_text())

    # ---- restrictions

    def test_outside_unauthenticated_relay_denied(self):
        client = self.connect(starttls=False)
        client.mail("someone@outside.test")
        code, text = client.rcpt("friend@remote.test")
        self.assertEqual((code, text),
                         (554, b"5.7.1 <friend@remote.test>: Relay access denied"))
        # Local domains still take mail without AUTH on port 25.
        self.assertEqual(client.rcpt("bob@example.test")[0], 250)

    def test_outside_authenticated_relays(self):
        client = self.connect()
        client.login("bob", PASSWORD)
        client.sendmail("bob@example.test", ["friend@remote.test"],
                        message("port25-auth"))
        self.wait_sink("port25-auth")

    def test_inside_relays_without_auth(self):
        client = self.connect(source="127.0.0.2", starttls=False)
        client.sendmail("inside@example.test", ["friend@remote.test"],
                        message("inside-relay"))
        data = self.wait_sink("inside-relay")[2]
        self.assertIn(b"with ESMTP id", data)

    def test_submission_rejects_unauthenticated(self):
        client = self.connect(self.sub_port)
        client.mail("someone@outside.test")
        code, text = client.rcpt("bob@example.test")
        self.assertEqual(code, 554)
        self.assertEqual(text, b"5.7.1 <unknown[127.0.0.1]>: Client host rejected: "
                               b"Access denied")

    def test_sender_login_mismatch(self):
        client = self.connect(self.sub_port)
        client.login("bob", PASSWORD)
        client.mail("alice@example.test")
        code, text = client.rcpt("friend@remote.test")
        self.assertEqual(code, 553)
        self.assertEqual(text, b"5.7.1 <alice@example.test>: Sender address rejected: "
                               b"not owned by user bob@example.test")

    def test_access_table_rejects_client(self):
        client = self.connect(source="127.0.0.5", starttls=False)
        client.mail("someone@outside.test")
        self.assertEqual(client.rcpt("bob@example.test"),
                         (554, b"5.7.1 <unknown[127.0.0.5]>: Client host rejected: "
                               b"Access denied"))

    def test_access_table_rejects_sender(self):
        client = self.connect(starttls=False)
        client.mail("spammer@bad.test")
        self.assertEqual(client.rcpt("bob@example.test"),
                         (554, b"5.7.1 <spammer@bad.test>: Sender address rejected: "
                               b"Known spam source"))
        client.rset()
        client.mail("x@worse.test")
        self.assertEqual(client.rcpt("bob@example.test"),
                         (550, b"5.7.0 <x@worse.test>: Sender address rejected: "
                               b"Not from there"))

    # ---- the sasldb

    def test_sasldb_unreadable_by_smtpd_user(self):
        if not is_root():
            self.skipTest("needs root: smtpd and authd then run as different users")
        sasldb = os.path.join(self.inst.dir, "sasl-data", "sasldb2")
        status = {}
        with open("/proc/%d/status" % self.inst.service_pids()["smtpd"][0]) as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.split()
        uid, gid = int(status["Uid"][1]), int(status["Gid"][1])
        groups = [int(g) for g in status.get("Groups", [])]
        self.assertNotEqual(uid, 0)
        self.assertNotEqual(uid, pwd.getpwnam("postern-auth").pw_uid)
        result = subprocess.run(["head", "-c", "1", sasldb], user=uid, group=gid,
                                extra_groups=groups, capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Permission denied", result.stderr)
        st = os.stat(sasldb)
        self.assertEqual(st.st_mode & 0o077, 0)
        # authd, as postern-auth, reads it: a login works.
        client = self.connect(source="127.0.0.7")
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 235)

    # ---- authd restarts

    def test_authd_killed_during_session(self):
        client = self.connect(source="127.0.0.6")
        self.assertEqual(client.docmd("AUTH", "LOGIN")[0], 334)
        old = self.inst.service_pids()["authd"]
        for pid in old:
            os.kill(pid, 9)
        code, text = client.docmd(base64.b64encode(b"alice").decode())
        self.assertEqual((code, text), (454, b"4.7.0 Temporary authentication failure"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = self.inst.service_pids().get("authd", [])
            if pids and not set(pids) & set(old):
                break
            time.sleep(0.1)
        code, _ = client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))
        self.assertEqual(code, 235)

    def test_authd_restart_while_idle(self):
        # smtpd's authd connection drops with no exchange in flight; the
        # next AUTH, in a session opened before the restart and in a new
        # one, connects again.
        before = self.connect(source="127.0.0.8")
        self.assertEqual(before.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 235)
        waiting = self.connect(source="127.0.0.8")
        old = self.inst.service_pids()["authd"]
        for pid in old:
            os.kill(pid, 9)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = self.inst.service_pids().get("authd", [])
            if pids and not set(pids) & set(old):
                break
            time.sleep(0.1)
        else:
            self.fail("master did not restart authd")
        self.assertEqual(waiting.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 235)
        after = self.connect(source="127.0.0.8")
        self.assertIn("AUTH PLAIN LOGIN", after.ehlo_resp.decode().split("\n"))
        self.assertEqual(after.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 235)

    # ---- logs

    def test_zz_password_in_no_log(self):
        # Named to run last in the class, after the other logins.
        client = self.connect()
        client.login("alice", PASSWORD)
        client.quit()
        secrets = [PASSWORD.encode(), plain("alice", PASSWORD).encode()]
        for path in (self.inst.log_file, self.inst.master_out):
            with open(path, "rb") as f:
                text = f.read()
            for secret in secrets:
                self.assertNotIn(secret, text, path)


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class RelayWithAuthTest(unittest.TestCase):
    """Instance A relays through instance B with AUTH over STARTTLS."""

    def test_relay_through_b_with_auth(self):
        b = Instance(tls=True, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_local_domain": DOMAIN,
            "smtpd_sasl_authenticated_header": "yes",
        })
        self.addCleanup(b.stop)
        make_sasldb(b, ["alice"])
        b.start()
        b.wait_for_service("authd")
        nexthop = "[127.0.0.1]:%d" % b.smtp_port
        a = Instance(users=["carl"], main_cf={
            "virtual_mailbox_domains": "a.test",
            "virtual_mailbox_maps": "inline:{carl@a.test=carl/}",
            "mynetworks": "127.0.0.0/8",
            "relayhost": nexthop,
            "smtp_tls_security_level": "encrypt",
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_password_maps": "inline:{%s=alice:%s}" % (nexthop, PASSWORD),
        })
        self.addCleanup(a.stop)
        a.start()
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=20) as client:
            client.sendmail("carl@a.test", ["bob@example.test"],
                            "Subject: a-to-b\r\n\r\nrelayed\r\n")
        data = b.wait_for_messages("bob", 1)[0]
        self.assertIn(b"with ESMTPSA id", data)
        self.assertIn(b"(Authenticated sender: alice@example.test)", data)
        self.assertIn("authenticated to", a.log_text())
        self.assertNotIn(PASSWORD, a.log_text())
        self.assertNotIn(PASSWORD, b.log_text())

    def relay_without_tls(self, b, tls_only, subject, count=1):
        nexthop = "[127.0.0.1]:%d" % b.smtp_port
        a = Instance(users=["carl"], main_cf={
            "virtual_mailbox_domains": "a.test",
            "virtual_mailbox_maps": "inline:{carl@a.test=carl/}",
            "mynetworks": "127.0.0.0/8",
            "relayhost": nexthop,
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_tls_only": tls_only,
            "smtp_sasl_password_maps": "inline:{%s=alice:%s}" % (nexthop, PASSWORD),
        })
        self.addCleanup(a.stop)
        a.start()
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=20) as client:
            for _ in range(count):
                client.sendmail("carl@a.test", ["bob@example.test"],
                                "Subject: %s\r\n\r\nrelayed\r\n" % subject)
        expected = len(b.messages("bob")) + count
        for data in b.wait_for_messages("bob", expected):
            if ("Subject: %s\n" % subject).encode() in data:
                return a, data
        self.fail("no message %r at B" % subject)

    def test_relay_plaintext_auth_only_when_allowed(self):
        b = Instance(main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_tls_auth_only": "no",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_sasl_local_domain": DOMAIN,
        })
        self.addCleanup(b.stop)
        make_sasldb(b, ["alice"])
        b.start()
        b.wait_for_service("authd")
        a, data = self.relay_without_tls(b, "no", "plain-allowed")
        self.assertIn(b"with ESMTPA id", data)
        self.assertIn("authenticated to", a.log_text())
        # With smtp_sasl_tls_only = yes the credentials stay at home,
        # and B takes the mail for its own domain without AUTH.
        a, data = self.relay_without_tls(b, "yes", "plain-refused", count=3)
        self.assertIn(b"with ESMTP id", data)
        self.assertNotIn("authenticated to", a.log_text())
        # The warning is rate limited: each smtp process logs it once for
        # this next hop, however many messages it carries.
        warnings = [line for line in a.log_text().splitlines()
                    if "without TLS (smtp_sasl_tls_only = yes)" in line]
        self.assertTrue(warnings)
        pids = [line.split("]:")[0].rsplit("[", 1)[1] for line in warnings]
        self.assertEqual(len(pids), len(set(pids)), warnings)


class RestrictionListTest(unittest.TestCase):
    """The restrictions the main class does not use, through SMTP."""

    def test_helo_recipient_fqdn_and_plaintext_restrictions(self):
        plain_port = free_port()
        inst = Instance(master_cf_extra=(
            "127.0.0.1:%d inet n - n - 1 smtpd\n"
            "  -o smtpd_client_restrictions=reject_plaintext_session\n" % plain_port),
            main_cf={
                "smtpd_helo_restrictions": "check_helo_access inline:{bad.helo.test=REJECT}",
                "smtpd_sender_restrictions": "reject_non_fqdn_sender",
                "smtpd_recipient_restrictions": "reject_non_fqdn_recipient, "
                    "check_recipient_access inline:{blocked@example.test=REJECT}",
            })
        self.addCleanup(inst.stop)
        inst.start()
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=20) as client:
            client.ehlo("bad.helo.test")
            client.mail("someone@outside.test")
            code, text = client.rcpt("bob@example.test")
            self.assertEqual(code, 554, text)
            self.assertIn(b"Helo command rejected", text)
        # From inside mynetworks, so that relaying is allowed and the
        # recipient list decides.
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=20,
                          source_address=("127.0.0.2", 0)) as client:
            client.ehlo("good.helo.test")
            client.mail("someone@outside.test")
            code, text = client.rcpt("blocked@example.test")
            self.assertEqual(code, 554, text)
            self.assertIn(b"Recipient address rejected", text)
            self.assertEqual(client.rcpt("friend@nodots")[0], 504)
            self.assertEqual(client.rcpt("bob@example.test")[0], 250)
            client.rset()
            client.mail("someone@nodots")
            self.assertEqual(client.rcpt("bob@example.test")[0], 504)
        with smtplib.SMTP("127.0.0.1", plain_port, timeout=20) as client:
            client.ehlo("good.helo.test")
            client.mail("someone@outside.test")
            self.assertEqual(client.rcpt("bob@example.test"),
                             (450, b"4.7.1 Session encryption is required"))

    def test_unknown_restriction_stops_smtpd(self):
        inst = Instance(main_cf={"smtpd_client_restrictions": "permit_everyone"})
        self.addCleanup(inst.stop)
        try:
            inst.start(timeout=5)
        except RuntimeError:
            pass  # the ports may never answer with a useful smtpd
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = inst.log_text() + inst.master_output()
            if "permit_everyone" in text:
                break
            time.sleep(0.1)
        self.assertIn('unknown restriction "permit_everyone" in '
                      'smtpd_client_restrictions', text)


SHIPPED_MASTER_CF = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "conf", "master.cf")


@unittest.skipUnless(os.path.exists(AUTHD), "authd is not built")
@unittest.skipUnless(os.path.exists(SASLPASSWD2), "saslpasswd2 (sasl2-bin) missing")
class SafeDefaultsTest(unittest.TestCase):
    """The shipped master.cf with a main.cf that sets only the host name,
    domains, networks, certificate and user database (plus the paths
    every test instance needs), and a SASL configuration without
    mech_list, while Debian's libsasl2-modules (NTLM, DIGEST-MD5, ...)
    is installed."""

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink()
        inst = cls.inst = Instance(tls=True)
        full = inst.main_cf
        keep = ["myhostname", "mydomain", "mydestination", "mynetworks",
                "virtual_mailbox_domains", "virtual_mailbox_base",
                "virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps",
                "smtpd_tls_chain_files",
                # Where this test instance lives, and no DNS.
                "queue_directory", "daemon_directory", "mail_owner",
                "maillog_file", "smtpd_peername_lookup", "alias_maps",
                "local_recipient_maps"]
        inst.main_cf = {name: full[name] for name in keep}
        inst.main_cf["relayhost"] = "[127.0.0.1]:%d" % cls.sink.port
        inst.main_cf["smtpd_sasl_local_domain"] = DOMAIN
        inst.write_main_cf()
        ports = {"smtp": inst.smtp_port, "submission": inst.submission_port,
                 "smtps": inst.smtps_port}
        lines = []
        with open(SHIPPED_MASTER_CF) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 1 and fields[1] == "inet":
                    line = line.replace(fields[0], "127.0.0.1:%d" % ports[fields[0]], 1)
                lines.append(line)
        with open(os.path.join(inst.config_dir, "master.cf"), "w") as f:
            f.write("".join(lines))
        make_sasldb(inst, ["alice"])
        conf = os.path.join(inst.config_dir, "sasl", "smtpd.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write("".join(l for l in text.splitlines(True)
                            if not l.startswith("mech_list")))
        inst.start()
        inst.wait_for_service("authd")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.sink.close()

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.inst.tls_ca)
        ctx.check_hostname = False
        return ctx

    def client(self, port, source="127.0.0.1"):
        client = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=20)
        self.addCleanup(client.close)
        client.ehlo("client.test")
        return client

    def test_submission_requires_tls_then_auth(self):
        client = self.client(self.inst.submission_port)
        self.assertTrue(client.has_extn("starttls"))
        self.assertFalse(client.has_extn("auth"))
        self.assertEqual(client.docmd("MAIL", "FROM:<alice@example.test>")[0], 530)
        client.starttls(context=self.tls_context())
        client.ehlo("client.test")
        lines = client.ehlo_resp.decode().split("\n")
        self.assertIn("AUTH PLAIN LOGIN", lines)
        self.assertIn("AUTH=PLAIN LOGIN", lines)
        client.mail("alice@example.test")
        self.assertEqual(client.rcpt("bob@example.test")[0], 554)
        client.rset()
        self.assertEqual(client.login("alice", PASSWORD)[0], 235)
        client.sendmail("alice@example.test", ["friend@remote.test"],
                        "Subject: defaults-587\r\n\r\nbody\r\n")
        self.sink.wait_for(1)

    def test_smtps_requires_auth(self):
        client = smtplib.SMTP_SSL("127.0.0.1", self.inst.smtps_port,
                                  context=self.tls_context(), timeout=20)
        self.addCleanup(client.close)
        client.ehlo("client.test")
        self.assertIn("AUTH PLAIN LOGIN", client.ehlo_resp.decode().split("\n"))
        client.mail("alice@example.test")
        self.assertEqual(client.rcpt("friend@remote.test")[0], 554)
        client.rset()
        self.assertEqual(client.login("alice", PASSWORD)[0], 235)

    def test_port25_offers_starttls_then_auth(self):
        # DESIGN.md: 25 and 587 both offer STARTTLS, and AUTH after it.
        client = self.client(self.inst.smtp_port)
        self.assertTrue(client.has_extn("starttls"))
        self.assertFalse(client.has_extn("auth"))
        self.assertEqual(client.docmd("AUTH", "PLAIN " + plain("alice", PASSWORD))[0], 538)
        client.starttls(context=self.tls_context())
        client.ehlo("client.test")
        lines = client.ehlo_resp.decode().split("\n")
        self.assertIn("AUTH PLAIN LOGIN", lines)
        self.assertIn("AUTH=PLAIN LOGIN", lines)
        self.assertEqual(client.login("alice", PASSWORD)[0], 235)
        client.mail("alice@example.test")
        self.assertEqual(client.rcpt("friend@remote.test")[0], 250)

    def test_port25_local_mail_without_auth_relay_denied(self):
        client = self.client(self.inst.smtp_port)
        self.assertFalse(client.has_extn("auth"))
        client.mail("someone@outside.test")
        self.assertEqual(client.rcpt("friend@remote.test"),
                         (554, b"5.7.1 <friend@remote.test>: Relay access denied"))
        self.assertEqual(client.rcpt("bob@example.test")[0], 250)

    def test_inside_network_relays_on_port25(self):
        client = self.client(self.inst.smtp_port, source="127.0.0.2")
        client.mail("inside@example.test")
        self.assertEqual(client.rcpt("friend@remote.test")[0], 250)

    def test_conf_d_shows_the_defaults(self):
        result = self.inst.postern("conf", "-d")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        for line in ["smtpd_relay_restrictions = permit_mynetworks, "
                     "permit_sasl_authenticated, reject_unauth_destination",
                     "smtpd_tls_auth_only = yes",
                     "broken_sasl_auth_clients = yes",
                     "authd_mechanisms = PLAIN LOGIN"]:
            self.assertIn(line, lines)


if __name__ == "__main__":
    unittest.main()
