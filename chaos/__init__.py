"""`make chaos`: the fault suite (see chaos/__main__.py and docs/reliability.md)."""
