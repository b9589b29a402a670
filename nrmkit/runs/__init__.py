"""The run layer: run folders (marker, lock, manifests), the harness that runs a workflow in
one, sweeps split into units with their executors and parts, and ``collect``."""
