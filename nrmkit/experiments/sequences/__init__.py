"""The sequences workflows."""
