"""One router per resource; each route is one call into the store."""
