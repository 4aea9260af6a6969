"""The fx service."""
