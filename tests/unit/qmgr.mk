# Unit tests of the qmgr area.
check_PROGRAMS += tests/unit/test_qmgr_plan
TESTS += tests/unit/test_qmgr_plan
tests_unit_test_qmgr_plan_SOURCES = tests/unit/test_qmgr_plan.c qmgr/plan.c
tests_unit_test_qmgr_plan_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/qmgr
tests_unit_test_qmgr_plan_LDADD = $(TEST_LDADD)
