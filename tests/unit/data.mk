# Unit tests of the data area.
