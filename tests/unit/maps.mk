# Unit tests of the maps area.
check_PROGRAMS += tests/unit/test_maps tests/unit/test_resolve
TESTS += tests/unit/test_maps tests/unit/test_resolve
tests_unit_test_maps_SOURCES = tests/unit/test_maps.c
tests_unit_test_maps_LDADD = $(TEST_LDADD)
tests_unit_test_resolve_SOURCES = tests/unit/test_resolve.c
tests_unit_test_resolve_LDADD = $(TEST_LDADD)
check_PROGRAMS += tests/unit/test_maps_cidr
TESTS += tests/unit/test_maps_cidr
tests_unit_test_maps_cidr_SOURCES = tests/unit/test_maps_cidr.c
tests_unit_test_maps_cidr_LDADD = $(TEST_LDADD)
