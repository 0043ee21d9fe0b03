# Unit tests of the maps area.
