# Unit tests of anvil's counter table (no I/O).
check_PROGRAMS += tests/unit/test_anvil_table
TESTS += tests/unit/test_anvil_table
tests_unit_test_anvil_table_SOURCES = tests/unit/test_anvil_table.c \
	anvil/table.c
tests_unit_test_anvil_table_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/anvil
tests_unit_test_anvil_table_LDADD = $(TEST_LDADD)
