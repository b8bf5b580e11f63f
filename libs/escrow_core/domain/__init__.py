"""The pure escrow domain: no I/O, no clock, no randomness.

It imports only the standard library and pydantic (checked by tools/check_domain_imports.py).
Time enters as ``now``; ids are made by the service layer.
"""
