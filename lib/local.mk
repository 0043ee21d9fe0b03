# lib/: code shared by two or more programs.
noinst_LIBRARIES += lib/libpostern.a
lib_libpostern_a_SOURCES = \
	lib/sbuf.c lib/sbuf.h \
	lib/log.c lib/log.h \
	lib/config.c lib/config_params.c lib/config.h \
	lib/mastercf.c lib/mastercf.h \
	lib/attr.c lib/attr.h \
	lib/qfile.c lib/qid.c lib/qfile.h \
	lib/addr.c lib/addr.h \
	lib/maps.c lib/maps_db.c lib/maps_pcre.c lib/maps_simple.c lib/maps_cidr.c \
	lib/maps_impl.h lib/maps.h \
	lib/netaddr.c lib/netaddr.h \
	lib/resolve.c lib/resolve.h \
	lib/iox.c lib/iox.h \
	lib/service.c lib/service.h \
	lib/deliver.c lib/deliver.h \
	lib/wakeup.c lib/wakeup.h \
	lib/tlsproxy_client.c lib/tlsproxy_client.h \
	lib/tls_pem.c lib/tls_pem.h lib/tls_check.c lib/tls_check.h \
	lib/authd_client.c lib/authd_client.h \
	lib/anvil_proto.h
lib_libpostern_a_CFLAGS = $(AM_CFLAGS) $(PCRE2_CFLAGS) $(GNUTLS_CFLAGS)

# Libraries every program links; programs add their own on top.
POSTERN_LIBS = lib/libpostern.a $(PCRE2_LIBS) $(DB_LIBS)
