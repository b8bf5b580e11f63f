"""The v1 routers; each route parses, builds a command or query, and shapes the answer."""
