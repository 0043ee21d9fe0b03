# cli/: the postern operator command, one file per group of subcommands.
sbin_PROGRAMS += cli/postern
cli_postern_SOURCES = cli/main.c cli/commands.h cli/control.c cli/queue.c \
	cli/map.c cli/conf.c cli/tls.c cli/maint.c
cli_postern_LDADD = $(POSTERN_LIBS) $(GNUTLS_LIBS)
