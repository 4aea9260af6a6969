"""The tax service."""
