# Unit tests of the qmgr area.
