# local/: see the file list for the parts.
pkglibexec_PROGRAMS += local/local
local_local_SOURCES = local/main.c
local_local_CFLAGS = $(AM_CFLAGS) 
local_local_LDADD = $(POSTERN_LIBS) 
