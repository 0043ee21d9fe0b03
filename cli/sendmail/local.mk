# cli/sendmail/: sendmail, and mailq and newaliases as links to it.
sbin_PROGRAMS += cli/sendmail/sendmail
cli_sendmail_sendmail_SOURCES = cli/sendmail/main.c cli/sendmail/sendmail.h \
	cli/sendmail/options.c cli/sendmail/options.h \
	cli/sendmail/header.c cli/sendmail/header.h \
	cli/sendmail/submit.c lib/maildrop.h \
	cli/queue.c cli/commands.h
cli_sendmail_sendmail_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/cli
cli_sendmail_sendmail_LDADD = $(POSTERN_LIBS)

# sendmail runs set-group-id to the group that may write into maildrop/
# (setgid_group, "postdrop" by default). Installing as root sets the
# group when it exists; a package build sets it in its post-install step.
SENDMAIL_GROUP = postdrop
install-exec-hook: install-sendmail-links
uninstall-hook: uninstall-sendmail-links

install-sendmail-links:
	cd "$(DESTDIR)$(sbindir)" && \
	  rm -f mailq newaliases && \
	  ln -s sendmail mailq && ln -s sendmail newaliases
	@if test "$$(id -u)" = 0 && getent group $(SENDMAIL_GROUP) >/dev/null; then \
	  echo " chgrp $(SENDMAIL_GROUP) + chmod g+s $(DESTDIR)$(sbindir)/sendmail"; \
	  chgrp $(SENDMAIL_GROUP) "$(DESTDIR)$(sbindir)/sendmail" && \
	  chmod 2755 "$(DESTDIR)$(sbindir)/sendmail"; \
	else \
	  echo "note: $(DESTDIR)$(sbindir)/sendmail is not set-group-id" \
	    "$(SENDMAIL_GROUP); run as root with that group to set it"; \
	fi

uninstall-sendmail-links:
	rm -f "$(DESTDIR)$(sbindir)/mailq" "$(DESTDIR)$(sbindir)/newaliases"

.PHONY: install-sendmail-links uninstall-sendmail-links
