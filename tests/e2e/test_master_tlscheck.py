"""master checks the server certificates at start and logs each problem."""

import os
import subprocess
import unittest

from harness import Instance, TOP_DIR

MAKE_CERTS = os.path.join(TOP_DIR, "scripts", "make-test-certs.sh")


class MasterTlsCheckTest(unittest.TestCase):
    def start_with_chain(self, build_chain):
        inst = Instance()
        certs = os.path.join(inst.dir, "certs")
        subprocess.run([MAKE_CERTS, certs, "mail.example.test"], check=True,
                       capture_output=True)
        chain = os.path.join(certs, "test-chain.pem")
        build_chain(certs, chain)
        inst.main_cf["smtpd_tls_chain_files"] = chain
        inst.main_cf["smtpd_tls_CAfile"] = os.path.join(certs, "ca.pem")
        inst.write_main_cf()
        inst.start()
        self.addCleanup(inst.stop)
        return inst

    def test_missing_intermediate_logged(self):
        def key_and_leaf_only(certs, chain):
            with open(chain, "wb") as out:
                for name in ("server.key", "server.pem"):
                    with open(os.path.join(certs, name), "rb") as f:
                        out.write(f.read())
            os.chmod(chain, 0o600)

        inst = self.start_with_chain(key_and_leaf_only)
        log = inst.log_text() + inst.master_output()
        self.assertIn("TLS certificate", log)
        self.assertIn("postern tls-check", log)

    def test_complete_chain_not_logged(self):
        def full_chain(certs, chain):
            with open(os.path.join(certs, "server-chain.pem"), "rb") as f:
                data = f.read()
            with open(chain, "wb") as out:
                out.write(data)
            os.chmod(chain, 0o600)

        inst = self.start_with_chain(full_chain)
        log = inst.log_text() + inst.master_output()
        self.assertNotIn("TLS certificate", log)


if __name__ == "__main__":
    unittest.main()
