"""The customs service."""
