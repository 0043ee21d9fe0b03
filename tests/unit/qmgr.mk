# Unit tests of the qmgr area.
check_PROGRAMS += tests/unit/test_qmgr_plan
TESTS += tests/unit/test_qmgr_plan
tests_unit_test_qmgr_plan_SOURCES = tests/unit/test_qmgr_plan.c qmgr/plan.c
tests_unit_test_qmgr_plan_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/qmgr
tests_unit_test_qmgr_plan_LDADD = $(TEST_LDADD)
check_PROGRAMS += tests/unit/test_qmgr_report
TESTS += tests/unit/test_qmgr_report
tests_unit_test_qmgr_report_SOURCES = tests/unit/test_qmgr_report.c \
	qmgr/report.c
tests_unit_test_qmgr_report_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/qmgr
tests_unit_test_qmgr_report_LDADD = $(TEST_LDADD)
