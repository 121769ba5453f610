"""The two stores: metadata (SQL) and blobs (content-addressed bytes over fsspec)."""
