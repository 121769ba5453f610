"""Model flavors: one module per framework, imported only when used."""
