# Unit tests of the smtp delivery agent.
