# Unit tests of smtpd's restriction lists and access tables, built from
# their smtpd/ sources with no session and no I/O.
check_PROGRAMS += tests/unit/test_smtpd_policy
TESTS += tests/unit/test_smtpd_policy
tests_unit_test_smtpd_policy_SOURCES = tests/unit/test_smtpd_policy.c \
	smtpd/policy.c smtpd/restrictions.c smtpd/access.c
tests_unit_test_smtpd_policy_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_test_smtpd_policy_LDADD = $(TEST_LDADD)
