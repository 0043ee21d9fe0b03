# conf/: the shipped configuration and the systemd unit.

# Reference copies, always installed.
confexampledir = $(docdir)/examples
dist_confexample_DATA = conf/main.cf conf/master.cf

# The live configuration in $(sysconfdir)/postern. An existing file holds
# the operator's settings, so install never overwrites it and uninstall
# removes only a file that is still identical to the shipped one.
postern_confdir = $(sysconfdir)/postern
postern_conf_files = main.cf master.cf

install-data-local: install-postern-conf
uninstall-local: uninstall-postern-conf

install-postern-conf:
	$(MKDIR_P) "$(DESTDIR)$(postern_confdir)"
	@for f in $(postern_conf_files); do \
	  dest="$(DESTDIR)$(postern_confdir)/$$f"; \
	  if test -f "$$dest"; then \
	    echo "keeping the existing $$dest"; \
	  else \
	    echo " $(INSTALL_DATA) $(srcdir)/conf/$$f $$dest"; \
	    $(INSTALL_DATA) "$(srcdir)/conf/$$f" "$$dest" || exit 1; \
	  fi; \
	done

uninstall-postern-conf:
	@for f in $(postern_conf_files); do \
	  dest="$(DESTDIR)$(postern_confdir)/$$f"; \
	  if cmp -s "$(srcdir)/conf/$$f" "$$dest"; then \
	    echo " rm -f $$dest"; rm -f "$$dest"; \
	  elif test -f "$$dest"; then \
	    echo "keeping the changed $$dest"; \
	  fi; \
	done

.PHONY: install-postern-conf uninstall-postern-conf

# The systemd unit, with the installed path of postern substituted.
# configure --with-systemdunitdir=DIR picks the directory, and
# --without-systemdunitdir installs no unit.
if INSTALL_SYSTEMD_UNIT
systemdunit_DATA = conf/postern.service
endif
conf/postern.service: $(srcdir)/conf/postern.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/conf/postern.service.in > $@.tmp && \
	mv $@.tmp $@
CLEANFILES += conf/postern.service
EXTRA_DIST += conf/postern.service.in
