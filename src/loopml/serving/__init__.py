"""Model serving: the inference app, batching, routing, prediction log and deployment artifacts."""
