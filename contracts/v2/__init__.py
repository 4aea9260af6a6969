"""Version 2 of the contracts that had to change incompatibly (see docs/contracts.md)."""
