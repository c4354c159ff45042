"""Which spot-check challenges the server can judge by itself (live head turn, blink).

The officer's challenges are four digits to read aloud or a gesture from
``spotcheck_gestures`` (free text, shown as written). Only a head turn and a blink are
visible in facial landmarks; :func:`automatic_check` maps a drawn challenge to the liveness
judge's kind (``turn_left``, ``turn_right``, ``blink``) from the prompt's words, or gives
the reason it has none — those challenges get verdict ``undecided`` and the officer judges
them, as for every verdict.

"Left" is the subject's own left (the head turns towards the image's right in the
unmirrored camera picture the server receives).
"""

from __future__ import annotations

from typing import Any, Final

VERDICT_ACTOR: Final = "system:liveness"

_TURN: Final = ("转", "turn", "头")
_LEFT: Final = ("左", "left")
_RIGHT: Final = ("右", "right")
_BLINK: Final = ("眨", "blink")


def automatic_check(drawn: dict[str, Any]) -> tuple[str | None, str]:
    """``(judge kind, "")`` for a challenge judged automatically, else ``(None, reason)``."""
    if drawn.get("kind") == "digits":
        return None, "digits read aloud are judged by the officer (no speech check)"
    prompt = str(drawn.get("prompt", "")).lower()
    if any(w in prompt for w in _BLINK):
        return "blink", ""
    if any(w in prompt for w in _TURN):
        left = any(w in prompt for w in _LEFT)
        right = any(w in prompt for w in _RIGHT)
        if left != right:
            return ("turn_left" if left else "turn_right"), ""
    return None, "this gesture has no automatic check (only head turns and blinks)"


def undecided(challenge: str, reason: str) -> dict[str, Any]:
    """The recorded verdict of a challenge nothing measured."""
    return {
        "challenge": challenge,
        "verdict": "undecided",
        "evidence": {"reason": reason, "frames": 0, "yaw": [], "ear": [], "files": []},
    }
