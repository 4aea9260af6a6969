"""The logistics service."""
