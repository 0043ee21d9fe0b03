# Unit tests of the smtpd area: the parsers and the DATA machine, which
# do no I/O and so are built straight from their smtpd/ sources.
check_PROGRAMS += tests/unit/test_smtpd_params tests/unit/test_smtpd_data
TESTS += tests/unit/test_smtpd_params tests/unit/test_smtpd_data
tests_unit_test_smtpd_params_SOURCES = tests/unit/test_smtpd_params.c \
	smtpd/params.c
tests_unit_test_smtpd_params_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_test_smtpd_params_LDADD = $(TEST_LDADD)
tests_unit_test_smtpd_data_SOURCES = tests/unit/test_smtpd_data.c \
	smtpd/data.c
tests_unit_test_smtpd_data_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_test_smtpd_data_LDADD = $(TEST_LDADD)
# The connection to a private service, on a real libevent loop against a
# listening UNIX socket in a temporary directory.
check_PROGRAMS += tests/unit/test_service_conn
TESTS += tests/unit/test_service_conn
tests_unit_test_service_conn_SOURCES = tests/unit/test_service_conn.c \
	smtpd/service_conn.c
tests_unit_test_service_conn_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtpd
tests_unit_test_service_conn_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_service_conn_LDADD = $(TEST_LDADD) $(LIBEVENT_LIBS) \
	$(PTHREAD_LIBS)
