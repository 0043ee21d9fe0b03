# tlsproxy/: the TLS engine; tlsproxy.h lists what each file holds.
pkglibexec_PROGRAMS += tlsproxy/tlsproxy
tlsproxy_tlsproxy_SOURCES = tlsproxy/tlsproxy.h tlsproxy/main.c \
	tlsproxy/request.c tlsproxy/handshake.c tlsproxy/server.c \
	tlsproxy/client.c tlsproxy/relay.c tlsproxy/summary.c \
	tlsproxy/priority.c
tlsproxy_tlsproxy_CFLAGS = $(AM_CFLAGS) $(GNUTLS_CFLAGS) $(LIBEVENT_CFLAGS)
tlsproxy_tlsproxy_LDADD = $(POSTERN_LIBS) $(GNUTLS_LIBS) $(LIBEVENT_LIBS)
