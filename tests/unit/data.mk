# Unit tests of the data area: attr, qfile and qid, addr.
check_PROGRAMS += tests/unit/test_attr tests/unit/test_qfile tests/unit/test_addr
TESTS += tests/unit/test_attr tests/unit/test_qfile tests/unit/test_addr
tests_unit_test_attr_SOURCES = tests/unit/test_attr.c
tests_unit_test_attr_LDADD = $(TEST_LDADD)
tests_unit_test_qfile_SOURCES = tests/unit/test_qfile.c
tests_unit_test_qfile_LDADD = $(TEST_LDADD) $(PTHREAD_LIBS)
tests_unit_test_addr_SOURCES = tests/unit/test_addr.c
tests_unit_test_addr_LDADD = $(TEST_LDADD)
