"""The rate_to_lif workflows."""
