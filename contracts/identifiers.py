"""Chinese identifiers (domain rules §13): unified social credit codes and resident identity numbers, and
the masked form of any identity number that parties other than customs see (spec §7.2)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"


def uscc_check_character(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS))
    c = 31 - total % 31
    return USCC_ALPHABET[0 if c == 31 else c]


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return "expected 18 characters"
    bad = [ch for ch in code if ch not in USCC_ALPHABET]
    if bad:
        return f"character {bad[0]!r} is not allowed (alphabet {USCC_ALPHABET})"
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r}, expected {expected!r}"
    return None


def resident_id_check_character(first17: str) -> str:
    return RESIDENT_ID_CHECK[sum(int(d) * w for d, w in zip(first17, RESIDENT_ID_WEIGHTS)) % 11]


def resident_id_problem(number: str) -> str | None:
    """Why `number` is not a valid resident identity number, or None when it is."""
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return "expected 17 digits and a check character (digit or X)"
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "digits 7-14 are not a real birth date"
    expected = resident_id_check_character(number[:17])
    if number[17] != expected:
        return f"check character is {number[17]!r}, expected {expected!r}"
    return None


MASK = "*"
# Spec §7.2: outside customs an identity number shows at most its first 4 and last 4 characters, with at
# least half of it masked; a number shorter than this shows only its last 2 (a 9-character passport such as
# E12345678 → *******78). Resident ids (18 characters) show 4 + 4: 1101**********0011.
SHORT_ID_BELOW = 12


def visible_ends(length: int) -> tuple[int, int]:
    """How many leading and trailing characters of an identity number of `length` characters may be shown
    outside customs (spec §7.2). Never more than half of the number is shown, whatever its length."""
    if length < SHORT_ID_BELOW:
        return 0, min(2, length // 2)
    shown = min(4, length // 4)
    return shown, shown


def mask_id_number(number: str) -> str:
    """What every party but customs may see of an identity number (spec §7.2):
    `110101199003070011` → `1101**********0011`, passport `E12345678` → `*******78`.

    Idempotent: masking an already masked number gives it back unchanged, and masking a half-masked
    value (`E123*5678`) masks it properly (`*******78`), so applying it to anything claiming to be masked
    is always safe. The length is kept (it says which kind of number it was, nothing more)."""
    head, tail = visible_ends(len(number))
    return number[:head] + MASK * (len(number) - head - tail) + (number[len(number) - tail:] if tail else "")


def is_masked_id_number(value: str) -> bool:
    """True when `value` reveals no more than `mask_id_number` would (the spec §7.2 masked form)."""
    return mask_id_number(value) == value


NAME_WITHHELD = "[name withheld]"


def redact(text: str, names: Iterable[str | None] = (), id_numbers: Iterable[str | None] = ()) -> str:
    """`text` with every known personal value of one case taken out: each name (case-insensitive)
    becomes `[name withheld]`, each identity number (case-insensitive) its masked form.

    For free text that leaves customs (an inspector's note published in a reason): the people of the
    order are known there, so their values are replaced exactly, whatever their format, which no
    pattern could promise. Longer values are replaced first so that a name inside another stays whole."""
    shown = {n.strip().lower(): NAME_WITHHELD for n in names if n and n.strip()}
    shown.update({i.strip().lower(): mask_id_number(i.strip().upper()) for i in id_numbers if i and i.strip()})
    if not shown:
        return text
    # One pass, longest first: a replacement is never searched again, and a value inside a longer one
    # (a name inside another) does not split it.
    pattern = "|".join(re.escape(v) for v in sorted(shown, key=len, reverse=True))
    return re.sub(pattern, lambda m: shown[m.group(0).lower()], text, flags=re.IGNORECASE)


def order_key(platform_code: str, order_no: str) -> str:
    """An order's key across the mesh (spec §6): the correlation id and Kafka key of its events."""
    return f"{platform_code}:{order_no}"
