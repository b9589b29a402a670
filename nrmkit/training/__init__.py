"""Training: losses on Lyapunov spectra, the spectrum trainer, checkpoints and resume."""
