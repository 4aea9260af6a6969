"""Version 1 of every REST body and event payload."""
