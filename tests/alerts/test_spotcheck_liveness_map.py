"""Which drawn challenges the server judges by itself: the default gestures' head turns and
blink map to the judge's kinds; digits and other gestures have none (with a reason)."""

from __future__ import annotations

import pytest

from alerts.spotcheck_liveness import automatic_check
from config.settings import Settings


@pytest.mark.parametrize(
    ("drawn", "kind"),
    [
        ({"kind": "gesture", "prompt": "请把头转向左边"}, "turn_left"),
        ({"kind": "gesture", "prompt": "请把头转向右边"}, "turn_right"),
        ({"kind": "gesture", "prompt": "请眨三次眼睛"}, "blink"),
        ({"kind": "gesture", "prompt": "Please turn your head left"}, "turn_left"),
        ({"kind": "gesture", "prompt": "Blink twice"}, "blink"),
        ({"kind": "gesture", "prompt": "请举起三根手指"}, None),
        ({"kind": "gesture", "prompt": "请用手摸右耳"}, None),
        ({"kind": "digits", "digits": "1234", "prompt": "请大声读出数字：1 2 3 4"}, None),
    ],
)
def test_the_mapping(drawn: dict[str, str], kind: str | None) -> None:
    got, reason = automatic_check(drawn)
    assert got == kind
    assert bool(reason) == (kind is None)


def test_the_default_gestures_include_all_three_checks() -> None:
    gestures = Settings().spotcheck_gestures.split(",")
    kinds = {automatic_check({"kind": "gesture", "prompt": g})[0] for g in gestures}
    assert {"turn_left", "turn_right", "blink"} <= kinds
