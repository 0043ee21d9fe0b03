# Unit tests of sbuf, config, mastercf, netaddr, iox.
check_PROGRAMS += tests/unit/test_sbuf
TESTS += tests/unit/test_sbuf
tests_unit_test_sbuf_SOURCES = tests/unit/test_sbuf.c
tests_unit_test_sbuf_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_LDADD = $(TEST_LDADD)
