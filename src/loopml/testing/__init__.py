"""Helpers for testing loopml and code built on it (test servers, fixtures' building blocks)."""
