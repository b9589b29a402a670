"""The spectrum_training workflows."""
