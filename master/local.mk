# master/: see the file list for the parts.
pkglibexec_PROGRAMS += master/master
master_master_SOURCES = master/main.c
master_master_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
master_master_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS)
