"""End-to-end tests of the local delivery agent.

Mail goes in over SMTP (smtplib) and comes out of the Maildirs and mbox
files that local writes: virtual mailboxes, alias expansion through a
hash: table built with `postern map`, loop detection and bounces.
"""

import os
import smtplib
import stat
import time
import unittest

from harness import Instance

SENDER = "bob@example.test"

# Aliases in a domain that is in mydestination.
ALIASES = """\
team: alice@example.test, bob@example.test
loop1: loop2@lists.test
loop2: loop1@lists.test
ghost: nobody@example.test
pipe: "|/bin/cat"
"""

ALIAS_MAIN_CF = {
    "mydestination": "localhost, lists.test",
    # smtpd accepts a local recipient that is a system user or an alias.
    "local_recipient_maps": "unix:passwd.byname $alias_maps",
}


def send(inst, sender, rcpts, data):
    """Send data (bytes with CRLF line ends) over SMTP to the instance."""
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=30) as client:
        client.ehlo("client.example.org")
        refused = client.sendmail(sender, rcpts, data)
    if refused:
        raise AssertionError("recipients refused: %r" % refused)


def wait_for_mbox(path, count, timeout=20):
    """Wait until the mbox file at path contains count messages; return it."""
    deadline = time.monotonic() + timeout
    text = b""
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            text = b""
        if text.startswith(b"From ") and text.count(b"\n\nFrom ") + 1 >= count:
            return text
        time.sleep(0.05)
    raise AssertionError("%s has not got %d messages after %s s: %r"
                         % (path, count, timeout, text[-400:]))


def stored_form(data):
    """Return data as the queue stores it: LF line ends, no dot-stuffing."""
    return data.replace(b"\r\n", b"\n")


def split_added_headers(delivered, sender, rcpts):
    """Check the headers local adds and return the rest of the message.

    rcpts: the Delivered-To values expected in order, the final mailbox
    first, then each alias passed.
    """
    prefix = b"Return-Path: <%s>\n" % sender.encode()
    for rcpt in rcpts:
        prefix += b"Delivered-To: %s\n" % rcpt.encode()
    if not delivered.startswith(prefix):
        raise AssertionError("message does not start with %r:\n%r"
                             % (prefix, delivered[:400]))
    return delivered[len(prefix):]


def strip_received(rest, original):
    """Return the header lines between the added headers and the original
    message, checking that the message ends with the original bytes."""
    if not rest.endswith(original):
        raise AssertionError("message does not end with the original bytes:\n"
                             "%r" % rest[-400:])
    return rest[:len(rest) - len(original)]


class LocalCase(unittest.TestCase):
    def start(self, main_cf=None, aliases=None, **kwargs):
        main_cf = dict(main_cf or {})
        inst = Instance(main_cf=main_cf, **kwargs)
        self.addCleanup(inst.stop)
        if aliases is not None:
            path = os.path.join(inst.config_dir, "aliases")
            with open(path, "w") as f:
                f.write(aliases)
            inst.main_cf["alias_maps"] = "hash:" + path
            inst.write_main_cf()
            built = inst.postern("map", path)
            self.assertEqual(built.returncode, 0, built.stderr)
        inst.start()
        return inst

    def bounce_for(self, inst, user, count=1):
        """Wait for count messages in user's Maildir; return the last one,
        checked to be a bounce from the null sender."""
        message = inst.wait_for_messages(user, count)[-1]
        self.assertTrue(message.startswith(b"Return-Path: <>\n"), message[:200])
        return message


class VirtualMaildirTest(LocalCase):
    def test_maildir_delivery_byte_exact(self):
        inst = self.start()
        original = (
            b"From: Bob <bob@example.test>\r\n"
            b"To: alice@example.test\r\n"
            b"Subject: byte-exact\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
            b".a line that starts with a dot\r\n"
            b"From the start of a line, left alone in a Maildir\r\n"
            b"\tindented\r\n"
            + b"x" * 998 + b"\r\n"
            b"last line\r\n")
        send(inst, SENDER, ["alice@example.test"], original)

        [delivered] = inst.wait_for_messages("alice", 1)
        rest = split_added_headers(delivered, SENDER, ["alice@example.test"])
        between = strip_received(rest, stored_form(original))
        for line in between.splitlines():
            self.assertTrue(line.startswith((b"Received:", b" ", b"\t")), line)
        self.assertEqual(inst.messages("bob"), [])

    def test_maildir_layout_and_unique_names(self):
        inst = self.start()
        for i in range(3):
            send(inst, SENDER, ["alice@example.test"],
                 b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
        inst.wait_for_messages("alice", 3)

        maildir = inst.maildir("alice")
        for sub in ("tmp", "new", "cur"):
            mode = os.stat(os.path.join(maildir, sub)).st_mode
            self.assertTrue(stat.S_ISDIR(mode), sub)
            self.assertEqual(stat.S_IMODE(mode), 0o700, sub)
        self.assertEqual(os.listdir(os.path.join(maildir, "tmp")), [])
        names = os.listdir(os.path.join(maildir, "new"))
        self.assertEqual(len(set(names)), 3)
        for name in names:
            # SECONDS.M<usec>P<pid>Q<counter>.<hostname>
            seconds, rest = name.split(".", 1)
            self.assertTrue(seconds.isdigit(), name)
            self.assertRegex(rest, r"^M\d+P\d+Q\d+\.", name)
            self.assertNotIn(":", name)
            path = os.path.join(maildir, "new", name)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, name)

    def test_mbox_delivery_quotes_from_lines(self):
        mailboxes = ("inline:{ alice@example.test=alice/, "
                     "bob@example.test=bob/, carol@example.test=carol.mbox }")
        inst = self.start(main_cf={"virtual_mailbox_maps": mailboxes})
        first = b"Subject: one\r\n\r\nFrom here on\r\nend\r\n"
        second = b"Subject: two\r\n\r\nno newline at the end"
        send(inst, SENDER, ["carol@example.test"], first)
        send(inst, SENDER, ["carol@example.test"], second)

        path = os.path.join(inst.mail_base, "carol.mbox")
        text = wait_for_mbox(path, 2)
        entries = text.split(b"\n\nFrom ")
        self.assertEqual(len(entries), 2, text)
        self.assertTrue(text.startswith(b"From bob@example.test "), text[:100])
        self.assertIn(b"\nReturn-Path: <bob@example.test>\n"
                      b"Delivered-To: carol@example.test\n", entries[0])
        self.assertTrue(entries[0].endswith(b"\n\n>From here on\nend"),
                        entries[0][-80:])
        # A message without a final newline gets one, then the empty line.
        self.assertTrue(text.endswith(b"\nno newline at the end\n\n"), text[-80:])
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_maildir_owned_by_virtual_uid(self):
        if os.geteuid() != 0:
            self.skipTest("switching the owner of a Maildir needs root")
        uid = gid = 4242
        inst = self.start(main_cf={"virtual_uid_maps": "static:%d" % uid,
                                   "virtual_gid_maps": "static:%d" % gid})
        # The base belongs to mail_owner; the mailbox directory to its user.
        os.mkdir(inst.maildir("alice"), 0o700)
        os.chown(inst.maildir("alice"), uid, gid)
        send(inst, SENDER, ["alice@example.test"], b"Subject: owner\r\n\r\nx\r\n")
        inst.wait_for_messages("alice", 1)

        maildir = inst.maildir("alice")
        paths = [os.path.join(maildir, sub) for sub in ("tmp", "new", "cur")]
        new_dir = os.path.join(maildir, "new")
        paths += [os.path.join(new_dir, name) for name in os.listdir(new_dir)]
        for path in paths:
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_gid), (uid, gid), path)

    def test_unknown_virtual_mailbox_in_alias_bounces(self):
        inst = self.start(main_cf=ALIAS_MAIN_CF, aliases=ALIASES)
        send(inst, SENDER, ["ghost@lists.test"], b"Subject: ghost\r\n\r\nx\r\n")

        bounce = self.bounce_for(inst, "bob")
        self.assertIn(b"5.1.1", bounce)
        self.assertIn(b"unknown user: nobody@example.test", bounce)


class AliasTest(LocalCase):
    def test_alias_to_several_addresses(self):
        inst = self.start(main_cf=ALIAS_MAIN_CF, aliases=ALIASES)
        original = b"Subject: to the team\r\n\r\nhello team\r\n"
        send(inst, "carol@example.org", ["team@lists.test"], original)

        for user in ("alice", "bob"):
            [delivered] = inst.wait_for_messages(user, 1)
            rest = split_added_headers(
                delivered, "carol@example.org",
                ["%s@example.test" % user, "team@lists.test"])
            strip_received(rest, stored_form(original))
        self.assertIn("forwarded as", inst.log_text())

    def test_alias_key_is_case_insensitive(self):
        inst = self.start(main_cf=ALIAS_MAIN_CF, aliases=ALIASES)
        send(inst, "carol@example.org", ["TEAM@lists.test"],
             b"Subject: caps\r\n\r\nx\r\n")
        inst.wait_for_messages("alice", 1)
        inst.wait_for_messages("bob", 1)

    def test_alias_loop_bounced(self):
        inst = self.start(main_cf=ALIAS_MAIN_CF, aliases=ALIASES)
        send(inst, SENDER, ["loop1@lists.test"], b"Subject: loop\r\n\r\nx\r\n")

        bounce = self.bounce_for(inst, "bob")
        self.assertIn(b"5.4.6", bounce)
        self.assertIn(b"mail forwarding loop for loop1@lists.test", bounce)
        self.assertEqual(inst.messages("alice"), [])

    def test_alias_to_command_rejected(self):
        inst = self.start(main_cf=ALIAS_MAIN_CF, aliases=ALIASES)
        send(inst, SENDER, ["pipe@lists.test"], b"Subject: pipe\r\n\r\nx\r\n")

        bounce = self.bounce_for(inst, "bob")
        self.assertIn(b"5.7.1", bounce)
        self.assertIn(b"mail to commands is disabled", bounce)

    def test_too_many_hops_bounced(self):
        inst = self.start(main_cf={"hopcount_limit": "3"})
        received = b"".join(b"Received: from hop%d.example.org\r\n" % i
                            for i in range(4))
        try:
            send(inst, SENDER, ["alice@example.test"],
                 received + b"Subject: hops\r\n\r\nx\r\n")
        except smtplib.SMTPDataError as e:
            if e.smtp_code // 100 == 5 and b"5.4.6" in e.smtp_error:
                self.skipTest("smtpd rejects the hop count before local sees it")
            raise

        bounce = self.bounce_for(inst, "bob")
        self.assertIn(b"5.4.6", bounce)
        self.assertIn(b"too many hops", bounce)
        self.assertEqual(inst.messages("alice"), [])


if __name__ == "__main__":
    unittest.main()
