"""One module per upstream: NAME, ROUTES, reset(), and optional CONTROLS {action: setter(body)}."""
