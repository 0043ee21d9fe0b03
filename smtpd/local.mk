# smtpd/: see the file list for the parts.
pkglibexec_PROGRAMS += smtpd/smtpd
smtpd_smtpd_SOURCES = smtpd/main.c
smtpd_smtpd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
smtpd_smtpd_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS) $(LIBEVENT_PTHREADS_LIBS) $(PTHREAD_LIBS)
