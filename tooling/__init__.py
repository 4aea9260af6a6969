"""Tooling that may import anything (contracts/, shared/, services/): nothing at runtime imports it."""
