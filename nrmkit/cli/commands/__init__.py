"""Click commands, one module per workflow family: options only, the computation lives in
:mod:`nrmkit.experiments`."""
