"""The escrow library every process shares: domain, store, projections, service."""
