"""The owner's side of signaling forwarded from other instances.

With several instances on one Redis a room lives on the instance that opened it
(:mod:`media.cluster`); an instance holding a client's websocket for another instance's
room forwards the client's ``rtc.*`` commands to the owner, after checking itself that the
caller may see the room and take the role. This module is what the owner runs for each
forwarded operation. It lives beside the media service rather than in the websocket layer
so that the composition root can hand it to the cluster without importing the signaling
handlers (which import the composition root's accessors).
"""

from __future__ import annotations

from typing import Any

from media.cluster import Operation, RelayTarget
from media.component import MediaService
from media.manager import JoinResult
from media.recorder import recording_to_json


def joined(result: JoinResult) -> dict[str, Any]:
    """A join or rejoin result as the client receives it."""
    return {
        "participant_id": result.participant_id,
        "ice_servers": result.ice_servers,
        "rejoin_token": result.rejoin_token,
        "role": result.role,
    }


def record_stats(service: MediaService, participant_id: str, samples: list[dict[str, Any]]) -> None:
    """The page's own ``getStats()`` samples into the room's quality timeline."""
    for sample in samples:
        service.manager.browser_quality(
            participant_id,
            str(sample["direction"]),
            loss=sample.get("loss"),
            jitter_ms=sample.get("jitter_ms"),
            rtt_ms=sample.get("rtt_ms"),
            bitrate_kbps=sample.get("bitrate_kbps"),
            fps=sample.get("fps"),
        )


def presence(service: MediaService, room_id: str) -> tuple[str, list[dict[str, str]]]:
    """The room's state and who is in it, in the shape of the room API's ``present``."""
    room = service.manager.room(room_id)
    present = [
        {"participant": p.id, "role": str(p.role), "principal": p.principal, "state": str(p.state)}
        for p in room.participants.values()
    ]
    return str(room.state), present


def owner_operations(service: MediaService) -> dict[str, Operation]:
    """The forwarded operations by name. The asking instance has checked the caller may see
    the room and may take the role; the room checks the invitation."""
    manager = service.manager

    async def join(args: dict[str, Any], relay: RelayTarget) -> Any:
        return joined(await manager.join(args["room"], args["role"], args["principal"], relay))

    async def rejoin(args: dict[str, Any], relay: RelayTarget) -> Any:
        result = await manager.rejoin(
            args["room"], args["participant"], args["token"], relay, principal=args["principal"]
        )
        return joined(result)

    async def offer(args: dict[str, Any], relay: RelayTarget) -> Any:
        return await manager.offer(args["participant"], args["sdp"])

    async def answer(args: dict[str, Any], relay: RelayTarget) -> Any:
        await manager.answer(args["participant"], args["sdp"])

    async def stats(args: dict[str, Any], relay: RelayTarget) -> Any:
        record_stats(service, args["participant"], list(args["samples"])[:4])

    async def leave(args: dict[str, Any], relay: RelayTarget) -> Any:
        await manager.leave(args["participant"])

    async def drop(args: dict[str, Any], relay: RelayTarget) -> Any:
        await manager.drop(args["participant"])

    async def view(args: dict[str, Any], relay: RelayTarget) -> Any:
        state, present = presence(service, args["room"])
        return {"state": state, "present": present}

    async def mute(args: dict[str, Any], relay: RelayTarget) -> Any:
        return manager.mute(args["room"], [str(p) for p in args["principals"]], bool(args["muted"]))

    async def end(args: dict[str, Any], relay: RelayTarget) -> Any:
        recordings = await service.end(str(args["room"]), str(args["actor"]))
        return [recording_to_json(r) for r in recordings]

    return {
        "view": view,
        "join": join,
        "rejoin": rejoin,
        "offer": offer,
        "answer": answer,
        "stats": stats,
        "leave": leave,
        "drop": drop,
        "mute": mute,
        "end": end,
    }
