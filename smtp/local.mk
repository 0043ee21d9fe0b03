# smtp/: the SMTP delivery agent.
pkglibexec_PROGRAMS += smtp/smtp
smtp_smtp_SOURCES = smtp/main.c smtp/request.c smtp/result.c smtp/session.c \
	smtp/transaction.c smtp/body.c smtp/reply.c smtp/nexthop.c smtp/auth.c smtp/tls.c \
	smtp/dns.c smtp/mx.c smtp/lmtp.c smtp/smtp.h
smtp_smtp_CFLAGS = $(AM_CFLAGS)
smtp_smtp_LDADD = $(POSTERN_LIBS) $(SASL_LIBS) $(RESOLV_LIBS)
