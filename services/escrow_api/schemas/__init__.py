"""Request and response bodies: strict, bounded, documented; field names are the contract."""
