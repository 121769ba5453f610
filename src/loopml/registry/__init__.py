"""The model registry: registered models, versions, aliases, lineage and promotion events."""
