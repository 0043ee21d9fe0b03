# qmgr/: see the file list for the parts.
pkglibexec_PROGRAMS += qmgr/qmgr
qmgr_qmgr_SOURCES = qmgr/main.c
qmgr_qmgr_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
qmgr_qmgr_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS)
