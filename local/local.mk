# local/: the local delivery agent.
pkglibexec_PROGRAMS += local/local
# Everything but main(), shared with the unit tests in tests/unit/agents.mk.
LOCAL_AGENT_SOURCES = local/request.c local/recipient.c local/alias.c \
	local/users.c local/maildir.c local/mbox.c local/message.c \
	local/local.h
local_local_SOURCES = local/main.c $(LOCAL_AGENT_SOURCES)
local_local_CFLAGS = $(AM_CFLAGS)
local_local_LDADD = $(POSTERN_LIBS)
