"""End-to-end tests of `postern conf`, `postern map` and the warning
about unknown main.cf names, each run with -c against an instance's
configuration directory.
"""

import os
import subprocess
import tempfile
import unittest

from harness import POSTERN_CLI, Instance

UNKNOWN_WARNING = 'unknown parameter name "no_such_setting" is ignored'


def lines(result):
    return result.stdout.splitlines()


class ConfTest(unittest.TestCase):
    """postern conf: effective, -n, -d and named parameters."""

    def setUp(self):
        self.inst = Instance(main_cf={"relayhost": "[127.0.0.1]:2626",
                                      "no_such_setting": "1"})
        self.addCleanup(self.inst.stop)

    def test_n_lists_exactly_main_cf(self):
        result = self.inst.postern("conf", "-n")
        self.assertEqual(result.returncode, 0, result.stderr)
        expected = ["%s = %s" % (name, self.inst.main_cf[name])
                    for name in sorted(self.inst.main_cf)
                    if name != "no_such_setting"]
        self.assertEqual(lines(result), expected)

    def test_d_shows_defaults_not_main_cf(self):
        result = self.inst.postern("conf", "-d", "relayhost", "mail_name")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(lines(result), ["relayhost = ", "mail_name = Postern"])

    def test_names_give_effective_values_in_order(self):
        result = self.inst.postern("conf", "relayhost", "myhostname")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(lines(result), ["relayhost = [127.0.0.1]:2626",
                                         "myhostname = mail.example.test"])

    def test_unknown_name_fails(self):
        result = self.inst.postern("conf", "no_such_setting")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no_such_setting", result.stderr)

    def test_all_lists_every_default_name_once(self):
        every = lines(self.inst.postern("conf", check=True))
        defaults = lines(self.inst.postern("conf", "-d", check=True))
        names = [line.split(" = ")[0] for line in every]
        self.assertEqual(names, [line.split(" = ")[0] for line in defaults])
        self.assertEqual(len(names), len(set(names)))
        self.assertIn("relayhost = [127.0.0.1]:2626", every)
        self.assertIn("relayhost = ", defaults)

    def test_unknown_main_cf_name_warned(self):
        result = self.inst.postern("conf", "-n")
        self.assertIn(UNKNOWN_WARNING, result.stderr)
        self.assertIn("main.cf, line ", result.stderr)


class UnknownNameLoggedTest(unittest.TestCase):
    """master logs a warning for an unknown main.cf name and runs on."""

    def test_master_logs_unknown_name(self):
        inst = Instance(main_cf={"no_such_setting": "1"})
        self.addCleanup(inst.stop)
        inst.start()
        self.assertIn(UNKNOWN_WARNING, inst.log_text())


class MapTest(unittest.TestCase):
    """postern map FILE builds FILE.db; map -q looks keys up."""

    def setUp(self):
        self.inst = Instance()
        self.addCleanup(self.inst.stop)
        self.table = os.path.join(self.inst.config_dir, "aliases")
        with open(self.table, "w") as f:
            f.write("# comment\nAlice@Example.TEST  alice-value\n"
                    "team: alice@example.test, bob@example.test\n")

    def query(self, key, spec):
        return self.inst.postern("map", "-q", key, spec)

    def test_hash_build_and_query(self):
        result = self.inst.postern("map", self.table)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.exists(self.table + ".db"))
        found = self.query("alice@example.test", "hash:" + self.table)
        self.assertEqual((found.returncode, found.stdout),
                         (0, "alice-value\n"), found.stderr)
        found = self.query("TEAM", "hash:" + self.table)
        self.assertEqual(found.stdout, "alice@example.test, bob@example.test\n")
        missing = self.query("nobody", "hash:" + self.table)
        self.assertEqual((missing.returncode, missing.stdout), (1, ""))

    def test_btree_build_and_query(self):
        result = self.inst.postern("map", "btree:" + self.table)
        self.assertEqual(result.returncode, 0, result.stderr)
        found = self.query("ALICE@example.test", "btree:" + self.table)
        self.assertEqual((found.returncode, found.stdout), (0, "alice-value\n"))

    def test_query_without_db_fails(self):
        result = self.query("alice@example.test", "hash:" + self.table)
        self.assertNotIn(result.returncode, (0, 1))
        self.assertEqual(result.stdout, "")

    def test_query_pcre_inline_static(self):
        pcre = os.path.join(self.inst.config_dir, "rules.pcre")
        with open(pcre, "w") as f:
            f.write("/^(.*)@old\\.test$/  $1@new.test\n")
        found = self.query("carol@old.test", "pcre:" + pcre)
        self.assertEqual((found.returncode, found.stdout), (0, "carol@new.test\n"),
                         found.stderr)
        found = self.query("K", "inline:{ k=v }")
        self.assertEqual(found.stdout, "v\n")
        found = self.query("anything", "static:fixed")
        self.assertEqual(found.stdout, "fixed\n")


if __name__ == "__main__":
    unittest.main()


class DefaultsWithoutMainCfTest(unittest.TestCase):
    """`conf -d` prints the compiled-in defaults before any main.cf exists."""

    def test_conf_defaults_without_main_cf(self):
        empty = tempfile.mkdtemp(prefix="postern-noconf-")
        self.addCleanup(os.rmdir, empty)
        r = subprocess.run([POSTERN_CLI, "-c", empty, "conf", "-d", "mail_owner"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "mail_owner = postern\n")

        r = subprocess.run([POSTERN_CLI, "-c", empty, "conf", "mail_owner"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("main.cf", r.stderr)
