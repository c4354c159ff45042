"""The in-process bus: the embedded default for a single instance."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from center.bus import DEFAULT_HISTORY_SIZE, Bus, BusMessage, json_roundtrip, new_epoch

_LOGGER = logging.getLogger(__name__)


class LocalBus(Bus):
    """Delivers synchronously inside :meth:`publish`, so by the time it returns every local
    subscriber has seen the message.

    There is no persistence: the epoch is drawn when the bus is made, and one epoch serves
    every topic, so a restarted process invalidates every position clients hold.
    """

    def __init__(
        self, history_size: int = DEFAULT_HISTORY_SIZE, *, instance_id: str | None = None
    ) -> None:
        super().__init__(history_size=history_size, instance_id=instance_id)
        self._epoch = new_epoch()
        self._seqs: dict[str, int] = {}
        self._histories: dict[str, deque[BusMessage]] = {}

    async def _start(self) -> None:
        _LOGGER.debug("%r: started, epoch %s", self, self._epoch)

    async def _close(self) -> None:
        self._histories.clear()

    async def ping(self) -> bool:
        return self.state == "running"

    async def publish(self, topic: str, type: str, data: Mapping[str, Any]) -> BusMessage:
        self._check_running("publish")
        _, decoded = json_roundtrip(data)
        seq = self._seqs.get(topic, 0) + 1
        self._seqs[topic] = seq
        msg = BusMessage(topic, type, decoded, self.instance_id, seq, self._epoch, time.time())
        history = self._histories.get(topic)
        if history is None:
            history = self._histories[topic] = deque(maxlen=self.history_size)
        history.append(msg)
        self.metrics.published += 1
        self._dispatch(msg)
        return msg

    async def publish_many(
        self, topic: str, type: str, datas: Sequence[Mapping[str, Any]]
    ) -> list[BusMessage]:
        """One JSON round trip for the whole run (a batch of 500 check-ins is one encode)."""
        self._check_running("publish")
        decoded = json.loads(
            json.dumps([dict(d) for d in datas], ensure_ascii=False, allow_nan=False)
        )
        history = self._histories.get(topic)
        if history is None:
            history = self._histories[topic] = deque(maxlen=self.history_size)
        out = []
        now = time.time()
        for data in decoded:
            seq = self._seqs.get(topic, 0) + 1
            self._seqs[topic] = seq
            msg = BusMessage(topic, type, data, self.instance_id, seq, self._epoch, now)
            history.append(msg)
            self.metrics.published += 1
            self._dispatch(msg)
            out.append(msg)
        return out

    async def history(self, topic: str, after_seq: int, epoch: str) -> list[BusMessage] | None:
        self._check_running("read history")
        if epoch != self._epoch:
            return None
        last = self._seqs.get(topic, 0)
        if after_seq < 0 or after_seq > last:
            return None
        if after_seq == last:
            return []
        history = self._histories.get(topic, ())
        if not history or history[0].seq > after_seq + 1:
            return None
        return list(itertools.islice(history, after_seq + 1 - history[0].seq, None))

    async def position(self, topic: str) -> tuple[str, int]:
        self._check_running("read position")
        return self._epoch, self._seqs.get(topic, 0)
