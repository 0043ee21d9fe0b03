# Unit tests of the smtp delivery agent: replies, next hops, MX answers,
# DATA encoding.
check_PROGRAMS += tests/unit/test_smtp_reply tests/unit/test_smtp_nexthop \
	tests/unit/test_smtp_body tests/unit/test_smtp_mx tests/unit/test_smtp_lmtp
TESTS += tests/unit/test_smtp_reply tests/unit/test_smtp_nexthop \
	tests/unit/test_smtp_body tests/unit/test_smtp_mx tests/unit/test_smtp_lmtp
tests_unit_test_smtp_reply_SOURCES = tests/unit/test_smtp_reply.c \
	smtp/reply.c smtp/session.c smtp/nexthop.c smtp/result.c \
	smtp/tls.c smtp/auth.c smtp/dns.c smtp/mx.c smtp/lmtp.c smtp/smtp.h
tests_unit_test_smtp_reply_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtp
tests_unit_test_smtp_reply_LDADD = $(TEST_LDADD) $(SASL_LIBS) $(RESOLV_LIBS)
tests_unit_test_smtp_mx_SOURCES = tests/unit/test_smtp_mx.c \
	smtp/dns.c smtp/mx.c smtp/nexthop.c smtp/smtp.h
tests_unit_test_smtp_mx_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtp
tests_unit_test_smtp_mx_LDADD = $(TEST_LDADD) $(RESOLV_LIBS)
tests_unit_test_smtp_nexthop_SOURCES = tests/unit/test_smtp_nexthop.c \
	smtp/nexthop.c smtp/smtp.h
tests_unit_test_smtp_nexthop_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtp
tests_unit_test_smtp_nexthop_LDADD = $(TEST_LDADD)
tests_unit_test_smtp_body_SOURCES = tests/unit/test_smtp_body.c \
	smtp/body.c smtp/reply.c smtp/result.c smtp/smtp.h
tests_unit_test_smtp_body_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtp
tests_unit_test_smtp_body_LDADD = $(TEST_LDADD)
tests_unit_test_smtp_lmtp_SOURCES = tests/unit/test_smtp_lmtp.c \
	smtp/lmtp.c smtp/reply.c smtp/session.c smtp/nexthop.c smtp/result.c \
	smtp/tls.c smtp/auth.c smtp/dns.c smtp/mx.c smtp/smtp.h
tests_unit_test_smtp_lmtp_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/smtp
tests_unit_test_smtp_lmtp_LDADD = $(TEST_LDADD) $(SASL_LIBS) $(RESOLV_LIBS)
