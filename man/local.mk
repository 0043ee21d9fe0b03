# man/: manual pages.
dist_man8_MANS = man/postern.8
