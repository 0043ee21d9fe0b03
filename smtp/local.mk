# smtp/: see the file list for the parts.
pkglibexec_PROGRAMS += smtp/smtp
smtp_smtp_SOURCES = smtp/main.c
smtp_smtp_CFLAGS = $(AM_CFLAGS) 
smtp_smtp_LDADD = $(POSTERN_LIBS) 
