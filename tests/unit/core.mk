# Unit tests of sbuf, config, mastercf, netaddr, iox.
check_PROGRAMS += tests/unit/test_sbuf
TESTS += tests/unit/test_sbuf
tests_unit_test_sbuf_SOURCES = tests/unit/test_sbuf.c
tests_unit_test_sbuf_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/unit/test_mastercf
TESTS += tests/unit/test_mastercf
tests_unit_test_mastercf_SOURCES = tests/unit/test_mastercf.c
tests_unit_test_mastercf_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/unit/test_netaddr
TESTS += tests/unit/test_netaddr
tests_unit_test_netaddr_SOURCES = tests/unit/test_netaddr.c
tests_unit_test_netaddr_LDADD = $(TEST_LDADD)

check_PROGRAMS += tests/unit/test_iox
TESTS += tests/unit/test_iox
tests_unit_test_iox_SOURCES = tests/unit/test_iox.c
tests_unit_test_iox_LDADD = $(TEST_LDADD)
