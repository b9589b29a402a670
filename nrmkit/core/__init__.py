"""Abstract bases, registries, run directories and errors shared by every layer."""
