"""Shared pytest configuration: the end-to-end harness lives in tests/e2e/conftest.py."""
