# master/: the supervisor, split by concept (see master/master.h).
pkglibexec_PROGRAMS += master/master
master_master_SOURCES = master/master.h master/main.c master/services.c \
	master/listen.c master/spawn.c master/status.c master/signals.c \
	master/pidfile.c master/notify.c master/tlscheck.c
master_master_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS)
master_master_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS) $(GNUTLS_LIBS)
