"""Command-line layer: shared click options, one-line errors, the run harness."""
