# Unit tests of the sendmail option and header parsers.
check_PROGRAMS += tests/unit/test_sendmail_options tests/unit/test_sendmail_header
TESTS += tests/unit/test_sendmail_options tests/unit/test_sendmail_header
tests_unit_test_sendmail_options_SOURCES = tests/unit/test_sendmail_options.c \
	cli/sendmail/options.c
tests_unit_test_sendmail_options_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/cli/sendmail
tests_unit_test_sendmail_options_LDADD = $(TEST_LDADD)
tests_unit_test_sendmail_header_SOURCES = tests/unit/test_sendmail_header.c \
	cli/sendmail/header.c cli/sendmail/submit.c
tests_unit_test_sendmail_header_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/cli/sendmail
tests_unit_test_sendmail_header_LDADD = $(TEST_LDADD)
