#!/usr/bin/env python3
"""Run the end-to-end tests and print "N passed, N failed, N skipped".

Usage: run.py [PATTERN ...]   PATTERN selects test modules by substring
of the file name (e.g. "smtpd"); without one every tests/e2e/test_*.py runs.
"""

import faulthandler
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class CountingResult(unittest.TextTestResult):
    """Prints one line per test with its outcome and duration."""

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def _line(self, word, test, extra=""):
        elapsed = time.monotonic() - self._started
        self.stream.write("%s %s (%.1fs)%s\n" % (word, test.id(), elapsed, extra))
        self.stream.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line("ok", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line("FAIL", test)

    def addError(self, test, err):
        super().addError(test, err)
        self._line("ERROR", test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line("skip", test, ": " + reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line("xfail", test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line("FAIL (unexpected success)", test)


# A hung test must fail the run, not stall it: after this many seconds
# every thread's stack is printed and the runner exits.
RUN_TIME_LIMIT = int(os.environ.get("POSTERN_E2E_TIME_LIMIT", "1800"))


def main():
    faulthandler.dump_traceback_later(RUN_TIME_LIMIT, exit=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.path.insert(0, HERE)
    patterns = sys.argv[1:]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        if patterns and not any(p in name for p in patterns):
            continue
        suite.addTests(loader.loadTestsFromName(name[:-3]))

    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0,
                                     resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
