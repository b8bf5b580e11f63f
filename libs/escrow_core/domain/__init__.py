"""The pure escrow domain: no I/O, no clock, no randomness.

It imports only the standard library and pydantic (an import-linter contract in
pyproject.toml, checked by make lint).
Time enters as ``now``; ids are made by the service layer.
"""
