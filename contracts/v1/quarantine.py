"""quarantine.status.v1: the quarantine agency's status of an order (services/quarantine/rules.py)."""
from __future__ import annotations

from typing import Literal

from contracts.v1.events import AgencyOrderStatus


class QuarantineStatus(AgencyOrderStatus):
    """`held` for inspection: a line falls in an animal or plant chapter of the Harmonized System (01-14);
    `cleared`: none does; `released` / `refused`: the inspection's outcome; `cancelled`: the order was."""

    status: Literal["held", "cleared", "released", "refused", "cancelled"]
    chapters: list[str] = []  # the two-digit HS chapters that hold it
