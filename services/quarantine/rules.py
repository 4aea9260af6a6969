"""Quarantine's decisions (pure). The domain rules have no quarantine section; the rule is the Harmonized
System's: Section I (chapters 01-05, live animals and animal products) and Section II (06-14, vegetable
products) are the goods animal and plant quarantine inspects at the border (as China's Law on Entry and
Exit Animal and Plant Quarantine does). An order with a line in those chapters is `held` for inspection
until an inspector releases or refuses it; an order with none is `cleared`. Each new version of the order
is decided afresh; a cancellation ends the case."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANIMAL_AND_PLANT_CHAPTERS = frozenset(f"{n:02d}" for n in range(1, 15))  # HS Sections I (01-05), II (06-14)


class NotHeld(Exception):
    """An inspection result for an order that is not held for inspection."""


@dataclass(frozen=True)
class Case:
    version: int
    status: str  # held | cleared | released | refused | cancelled
    chapters: tuple[str, ...] = ()

    def reasons(self) -> list[dict[str, str]]:
        if self.status not in ("held", "refused"):
            return []
        return [{"code": "ANIMAL_OR_PLANT_GOODS", "message": f"HS chapter {', '.join(self.chapters)}"}]


def chapters_held(hs_codes: Iterable[str]) -> tuple[str, ...]:
    """The animal and plant chapters (two digits, sorted) among the lines' HS codes."""
    return tuple(sorted({code[:2] for code in hs_codes} & ANIMAL_AND_PLANT_CHAPTERS))


def on_order(case: Case | None, action: str, version: int, hs_codes: Iterable[str]) -> Case | None:
    """The case after an order event (new, corrected, cancelled), or None when it changes nothing: a
    version no newer than the one decided (a redelivery, or an older version arriving late)."""
    if case is not None and version <= case.version:
        return None
    if action == "cancelled":
        return Case(version, "cancelled", case.chapters if case else ())
    chapters = chapters_held(hs_codes)
    return Case(version, "held" if chapters else "cleared", chapters)


def on_inspection(case: Case, passed: bool) -> Case:
    """An inspector's result for a held order: released or refused. Raises NotHeld otherwise."""
    if case.status != "held":
        raise NotHeld(f"the order is {case.status}, not held for inspection")
    return Case(case.version, "released" if passed else "refused", case.chapters)
