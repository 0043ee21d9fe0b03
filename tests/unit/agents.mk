# Unit tests of the local delivery agent.
check_PROGRAMS += tests/unit/test_local_maildir tests/unit/test_local_alias \
	tests/unit/test_local_mbox
TESTS += tests/unit/test_local_maildir tests/unit/test_local_alias \
	tests/unit/test_local_mbox
tests_unit_test_local_maildir_SOURCES = tests/unit/test_local_maildir.c \
	$(LOCAL_AGENT_SOURCES)
tests_unit_test_local_maildir_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/local
tests_unit_test_local_maildir_LDADD = $(TEST_LDADD)
tests_unit_test_local_alias_SOURCES = tests/unit/test_local_alias.c \
	$(LOCAL_AGENT_SOURCES)
tests_unit_test_local_alias_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/local
tests_unit_test_local_alias_LDADD = $(TEST_LDADD)
tests_unit_test_local_mbox_SOURCES = tests/unit/test_local_mbox.c \
	$(LOCAL_AGENT_SOURCES)
tests_unit_test_local_mbox_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/local
tests_unit_test_local_mbox_LDADD = $(TEST_LDADD)
