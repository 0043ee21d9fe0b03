# Unit tests of the local delivery agent.
