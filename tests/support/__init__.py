"""Helpers shared by the test suites (import them as ``support.<module>``)."""
