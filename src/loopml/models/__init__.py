"""Model packages: flavors, signatures, safe formats, loading and evaluation."""
