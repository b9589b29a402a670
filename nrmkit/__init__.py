"""nrmkit: recurrent neural networks with biological features.

Lyapunov spectra of rate networks, training on the spectrum (neuronal response
modulation), adaptive nonlinearities, GLIFR neurons and rate-to-spiking conversion,
behind one command-line interface. Heavy dependencies (torch, matplotlib) are imported
by the submodules that need them, so ``import nrmkit`` stays cheap.
"""

__version__ = "0.1.0"
