# tests/: C unit tests run by `make check`, one fragment per area so that
# each area adds its programs without touching the others.
TEST_LDADD = $(POSTERN_LIBS)
include $(srcdir)/tests/unit/core.mk
include $(srcdir)/tests/unit/data.mk
include $(srcdir)/tests/unit/maps.mk
include $(srcdir)/tests/unit/smtpd.mk
include $(srcdir)/tests/unit/qmgr.mk
include $(srcdir)/tests/unit/agents.mk
include $(srcdir)/tests/unit/smtp.mk
include $(srcdir)/tests/unit/tls.mk
include $(srcdir)/tests/unit/auth.mk
include $(srcdir)/tests/unit/policy.mk
include $(srcdir)/tests/unit/sendmail.mk
include $(srcdir)/tests/unit/anvil.mk
EXTRA_DIST += tests/unit/testlib.h tests/run tests/e2e
