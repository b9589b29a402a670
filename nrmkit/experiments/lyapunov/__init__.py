"""The lyapunov workflows."""
