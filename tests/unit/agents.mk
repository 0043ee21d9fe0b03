# Unit tests of the agents area.
