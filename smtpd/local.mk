# smtpd/: the SMTP server; smtpd.h lists what each file holds.
pkglibexec_PROGRAMS += smtpd/smtpd
smtpd_smtpd_SOURCES = smtpd/smtpd.h smtpd/main.c smtpd/session.c \
	smtpd/lookup.c smtpd/commands.c smtpd/params.c smtpd/data.c \
	smtpd/policy.c smtpd/commit.c smtpd/auth.c smtpd/authd_conn.c \
	smtpd/tls.c smtpd/policy.h smtpd/restrictions.c smtpd/access.c \
	smtpd/limits.c smtpd/anvil_conn.c smtpd/service_conn.c \
	smtpd/service_conn.h
smtpd_smtpd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
smtpd_smtpd_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS) $(LIBEVENT_PTHREADS_LIBS) $(PTHREAD_LIBS)
