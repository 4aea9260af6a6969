"""Test doubles: deliberately wrong implementations that tests run to prove a check can fail."""
