"""The ``escrow`` command line."""
