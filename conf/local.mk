# conf/: shipped configuration files, installed as examples.
confexampledir = $(docdir)/examples
dist_confexample_DATA = conf/main.cf conf/master.cf
