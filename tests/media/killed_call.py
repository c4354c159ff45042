"""A recorded call run as a separate process, to be killed with SIGKILL by a test.

Prints one JSON line per half second with the recording's path and how much media the
muxer has been handed, then runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from media.manager import RoomManager
from media.store import MemoryRecordingStore
from tests.media.conftest import media_settings
from tests.media.peers import Client


async def main(directory: Path) -> None:
    manager = RoomManager(media_settings(directory), store=MemoryRecordingStore())
    await manager.start()
    room_id = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room_id, "a", base=0).join()
    bob = await Client(manager, room_id, "b", base=None).join()
    await alice.connect()
    await bob.connect()
    room = manager.room(room_id)
    while True:
        await asyncio.sleep(0.5)
        for recording in room.live_recordings():
            if recording.state == "recording":
                line = {"path": str(recording.info.path), "recorded_s": recording.recorded_s}
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
