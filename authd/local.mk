# authd/: the SASL authentication service (see authd/authd.h for the parts).
pkglibexec_PROGRAMS += authd/authd
authd_authd_SOURCES = authd/main.c authd/authd.h authd/session.c \
	authd/request.c authd/sasl.c authd/scram.c authd/throttle.c
authd_authd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS)
authd_authd_LDADD = $(POSTERN_LIBS) $(SASL_LIBS) $(LIBEVENT_LIBS) \
	$(GNUTLS_LIBS) $(PTHREAD_LIBS)
