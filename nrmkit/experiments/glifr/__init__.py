"""The glifr workflows."""
