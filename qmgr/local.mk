# qmgr/: the queue manager (see qmgr/qmgr.h for the parts).
pkglibexec_PROGRAMS += qmgr/qmgr
qmgr_qmgr_SOURCES = qmgr/main.c qmgr/qmgr.h qmgr/scan.c qmgr/message.c \
	qmgr/dispatch.c qmgr/defer.c qmgr/bounce.c qmgr/plan.c \
	qmgr/report.c qmgr/report.h
qmgr_qmgr_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
qmgr_qmgr_LDADD = $(POSTERN_LIBS) $(LIBEVENT_LIBS)
