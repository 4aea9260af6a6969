"""The credit service."""
