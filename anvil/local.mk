# anvil/: the per-client connection counter (see anvil/anvil.h).
pkglibexec_PROGRAMS += anvil/anvil
anvil_anvil_SOURCES = anvil/anvil.h anvil/main.c anvil/conn.c anvil/table.c
anvil_anvil_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
anvil_anvil_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS)
