# Unit tests of TLS: the priority mapping of tlsproxy, the tlsproxy
# client library and the PEM grouping.
check_PROGRAMS += tests/unit/test_tls_priority tests/unit/test_tls_client
TESTS += tests/unit/test_tls_priority tests/unit/test_tls_client
tests_unit_test_tls_priority_SOURCES = tests/unit/test_tls_priority.c \
	tlsproxy/priority.c tlsproxy/tlsproxy.h
tests_unit_test_tls_priority_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tlsproxy
tests_unit_test_tls_priority_CFLAGS = $(AM_CFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_tls_priority_LDADD = $(TEST_LDADD)
tests_unit_test_tls_client_SOURCES = tests/unit/test_tls_client.c
tests_unit_test_tls_client_LDADD = $(TEST_LDADD)
