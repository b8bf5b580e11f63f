"""Read models built from the log: each a pure ``apply`` plus its table."""
