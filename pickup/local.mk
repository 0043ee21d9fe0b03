# pickup/: turns the files that sendmail drops into maildrop/ into queue files.
pkglibexec_PROGRAMS += pickup/pickup
pickup_pickup_SOURCES = pickup/main.c pickup/pickup.h pickup/maildrop.c \
	pickup/policy.c lib/maildrop.h
pickup_pickup_LDADD = $(POSTERN_LIBS)
