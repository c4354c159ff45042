"""Group commit for ingestion: concurrent requests share one transaction.

Thousands of phones checking in at once would otherwise mean thousands of small
transactions; on SQLite they would also queue on the database's single write lock with
sleeping busy-waits. The writer collects the rows that requests submit while a transaction
is in flight and writes them all in the next one — one ``INSERT … ON CONFLICT (event_id)
DO NOTHING RETURNING`` per table, one look-up of the duplicates, one commit — then answers
every request. A request is answered only after the commit that holds its rows.

If the transaction fails, every request in it gets the exception (nothing was written).

Other small writes that follow ingestion (attaching late check-ins to their alarms) go
through :meth:`GroupWriter.run_job`, so they too share a transaction and never fight the
inserts for SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from alerts.raising import dialect_insert

_LOGGER = logging.getLogger(__name__)
_IN_CHUNK = 1000
IDEMPOTENCY_KEY = ("credential_id", "event_id")
"""What makes an ingested row unique: the API key that sent it, and its event id."""
_MAX_ROWS = 5000


@dataclass(slots=True)
class _Submission:
    table: Table
    rows: Sequence[dict[str, Any]]
    cols: tuple[str, ...]
    future: asyncio.Future[tuple[set[str], dict[str, dict[str, Any]]]]
    inserted: set[str] = field(default_factory=set)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)


Job = Callable[[AsyncSession], Awaitable[Any]]


class GroupWriter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._engine: AsyncEngine = sessionmaker.kw["bind"]
        self._pending: list[_Submission] = []
        self._jobs: list[tuple[Job, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._running = False
        self._conn: AsyncConnection | None = None
        self.transactions = 0

    def __repr__(self) -> str:
        return f"<GroupWriter pending={len(self._pending)} transactions={self.transactions}>"

    async def write(
        self, table: Table, rows: Sequence[dict[str, Any]], cols: tuple[str, ...] = ()
    ) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """Insert ``rows`` idempotently; returns the event ids this call inserted and, for
        the others, the stored row's ``event_id`` + ``cols``."""
        if not rows:
            return set(), {}
        if not self._running:
            # No writer loop (a bare engine in a benchmark or a unit test): write directly.
            sub = _Submission(table, rows, cols, asyncio.get_running_loop().create_future())
            try:
                await self._flush([sub])
            finally:
                await self._drop_connection()
            return sub.future.result()
        fut: asyncio.Future[tuple[set[str], dict[str, dict[str, Any]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending.append(_Submission(table, rows, cols, fut))
        self._wake.set()
        return await fut

    async def run_job(self, job: Job) -> Any:
        """Run ``job(session)`` in the writer's turn; jobs queued together share a
        transaction, committed after the last one. Returns the job's result."""
        if not self._running:
            async with self._sessionmaker() as session:
                result = await job(session)
                await session.commit()
            return result
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._jobs.append((job, fut))
        self._wake.set()
        return await fut

    async def _run_jobs(self) -> None:
        jobs, self._jobs = self._jobs, []
        results: list[Any] = []
        try:
            async with self._sessionmaker() as session:
                for job, _ in jobs:
                    results.append(await job(session))
                await session.commit()
        except BaseException as exc:
            for _, fut in jobs:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            _LOGGER.warning("%s follow-up writes failed: %s", len(jobs), exc)
            return
        for (_, fut), result in zip(jobs, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def run(self) -> None:
        """The writer loop (one per engine, under the app's TaskSupervisor)."""
        self._running = True
        try:
            while True:
                await self._wake.wait()
                # One turn of the loop lets requests that are already being parsed join.
                await asyncio.sleep(0)
                self._wake.clear()
                while self._jobs or self._pending:
                    if self._jobs:
                        await self._run_jobs()
                    if not self._pending:
                        continue
                    group: list[_Submission] = []
                    n = 0
                    while self._pending and (
                        not group or n + len(self._pending[0].rows) <= _MAX_ROWS
                    ):
                        sub = self._pending.pop(0)
                        group.append(sub)
                        n += len(sub.rows)
                    await self._flush(group)
        finally:
            self._running = False
            await asyncio.shield(self._drop_connection())
            stopped = RuntimeError("the ingestion writer stopped")
            for sub in self._pending:
                if not sub.future.done():
                    sub.future.set_exception(stopped)
            for _, fut in self._jobs:
                if not fut.done():
                    fut.set_exception(stopped)
            self._pending.clear()
            self._jobs.clear()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = self._engine.connect()
            await conn.start()
            self._conn = conn
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:  # a broken connection: it is being dropped anyway
                _LOGGER.debug("closing the writer's connection failed: %s", exc)

    async def _flush(self, group: list[_Submission]) -> None:
        try:
            # A Core connection held by the writer loop, not an ORM session from the pool:
            # this runs thousands of times a second, and each pool round trip costs.
            conn = await self._connection()
            async with conn.begin():
                tables: dict[str, list[_Submission]] = {}
                for sub in group:
                    tables.setdefault(sub.table.name, []).append(sub)
                for subs in tables.values():
                    table = subs[0].table
                    rows = [r for sub in subs for r in sub.rows]
                    # event ids are unique per API key (credential_id): requests of several
                    # keys share this statement, so rows are told apart by both
                    stmt = (
                        dialect_insert(conn, table)
                        .on_conflict_do_nothing(index_elements=list(IDEMPOTENCY_KEY))
                        .returning(table.c.credential_id, table.c.event_id)
                    )
                    fresh = {(c, e) for c, e in (await conn.execute(stmt, rows)).all()}
                    for sub in subs:
                        for row in sub.rows:
                            key = (row["credential_id"], row["event_id"])
                            if key in fresh:
                                sub.inserted.add(row["event_id"])
                                fresh.discard(key)  # a repeat later in the group is a duplicate
                    dups = [
                        (r["credential_id"], r["event_id"])
                        for sub in subs
                        for r in sub.rows
                        if r["event_id"] not in sub.inserted
                    ]
                    cols = tuple(dict.fromkeys(c for sub in subs for c in sub.cols))
                    found = await self._lookup(conn, table, cols, dups) if dups else {}
                    for sub in subs:
                        cred = sub.rows[0]["credential_id"] if sub.rows else ""
                        sub.stored = {e: row for (c, e), row in found.items() if c == cred}
            self.transactions += 1
        except BaseException as exc:
            await self._drop_connection()
            for sub in group:
                if not sub.future.done():
                    sub.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            _LOGGER.warning("ingestion transaction of %s requests failed: %s", len(group), exc)
            return
        for sub in group:
            if not sub.future.done():
                sub.future.set_result((sub.inserted, sub.stored))

    @staticmethod
    async def _lookup(
        session: AsyncConnection,
        table: Table,
        cols: tuple[str, ...],
        keys: list[tuple[str, str]],
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The stored rows of ``(credential_id, event_id)`` pairs, by pair."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        by_cred: dict[str, list[str]] = {}
        for cred, eid in dict.fromkeys(keys):
            by_cred.setdefault(cred, []).append(eid)
        for cred, wanted in by_cred.items():
            for i in range(0, len(wanted), _IN_CHUNK):
                rows = await session.execute(
                    select(*(table.c[c] for c in ("event_id", *cols))).where(
                        table.c.credential_id == cred,
                        table.c.event_id.in_(wanted[i : i + _IN_CHUNK]),
                    )
                )
                for row in rows.mappings():
                    out[(cred, row["event_id"])] = dict(row)
        return out
