"""Masking for screens that must not show personal data in clear (wall displays, exports).

Masks keep the length visible (one ``*`` per hidden character) so columns still line up, and
keep only what staff need to tell people apart at a glance.
"""

from __future__ import annotations

MASK = "*"


def mask_name(name: str) -> str:
    """``张三`` -> ``张*``, ``张三丰`` -> ``张*丰``, ``欧阳娜娜`` -> ``欧**娜``.

    Only the first and last characters survive, also for compound surnames (欧阳, 司徒 ...):
    keeping the whole surname of a rare family would say too much.
    """
    name = name.strip()
    n = len(name)
    if n <= 1:
        return MASK * n
    if n == 2:
        return name[0] + MASK
    return name[0] + MASK * (n - 2) + name[-1]


def mask_id_number(id_number: str) -> str:
    """``440301199001011234`` -> ``4403**********1234``: province and city, last four only
    (the county code and the birth date would narrow a person down too far)."""
    id_number = id_number.strip()
    n = len(id_number)
    if n <= 8:
        return MASK * n
    return id_number[:4] + MASK * (n - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """``17000001234`` -> ``170****1234``; spaces and hyphens are dropped first."""
    digits = "".join(ch for ch in phone if ch not in " -")
    n = len(digits)
    if n <= 7:
        return MASK * n
    return digits[:3] + MASK * (n - 7) + digits[-4:]
