# Unit tests of the AUTH area: authd's request parsing, base64 and
# throttling, built from their authd/ sources (no I/O, no libsasl2), and
# the authd client library.
check_PROGRAMS += tests/unit/test_authd_request tests/unit/test_authd_throttle \
	tests/unit/test_authd_client tests/unit/test_authd_scram
TESTS += tests/unit/test_authd_request tests/unit/test_authd_throttle \
	tests/unit/test_authd_client tests/unit/test_authd_scram
tests_unit_test_authd_request_SOURCES = tests/unit/test_authd_request.c \
	authd/request.c
tests_unit_test_authd_request_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authd
tests_unit_test_authd_request_LDADD = $(TEST_LDADD)
tests_unit_test_authd_throttle_SOURCES = tests/unit/test_authd_throttle.c \
	authd/throttle.c
tests_unit_test_authd_throttle_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authd
tests_unit_test_authd_throttle_LDADD = $(TEST_LDADD)
tests_unit_test_authd_client_SOURCES = tests/unit/test_authd_client.c
tests_unit_test_authd_client_LDADD = $(TEST_LDADD)
tests_unit_test_authd_scram_SOURCES = tests/unit/test_authd_scram.c \
	authd/scram.c authd/request.c
tests_unit_test_authd_scram_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/authd
tests_unit_test_authd_scram_CFLAGS = $(AM_CFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_authd_scram_LDADD = $(TEST_LDADD) $(GNUTLS_LIBS) $(PTHREAD_LIBS)
