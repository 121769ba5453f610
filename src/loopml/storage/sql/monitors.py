"""Monitors in the SQL store: their specs, the result of each window they checked, and their
events.

A monitor is a row of ``monitors`` (its spec as JSON text). Each checked window is a row of
``monitor_results`` keyed by (monitor, window start, window end), so recording a window again
is one ``INSERT ... ON CONFLICT DO UPDATE``: a re-check replaces the result atomically, and
concurrent re-checks leave exactly one row. Deleting a monitor deletes its results (the
foreign key cascades; they are deleted explicitly too, in the same transaction). Events go to
the shared append-only ``events`` table (``subject_type`` ``"monitor"``, ``subject_id`` the
name), written in the transaction of the change they record, so they outlive the monitor.

A write that needs the monitor to exist holds its row (``FOR SHARE`` on PostgreSQL; SQLite
serialises writers already) so a concurrent delete cannot slip in between.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.entities import Monitor, MonitorEvent, MonitorResult
from loopml.errors import AlreadyExistsError, MonitorNotFoundError
from loopml.storage.monitors import (
    MONITOR_SUBJECT,
    check_actor,
    check_event,
    check_event_query,
    check_monitor_name,
    check_result,
    check_result_query,
    check_spec,
    dump_json,
)
from loopml.storage.sql.base import SqlBase, now_ms
from loopml.storage.sql.schema import events, monitor_results, monitors

__all__ = ["MonitorsMixin"]


def _to_monitor(row: Row) -> Monitor:
    return Monitor(
        name=row.name,
        spec=json.loads(row.spec),
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
    )


def _not_found(name: str) -> MonitorNotFoundError:
    return MonitorNotFoundError(f"No monitor named {name!r}.", name=name)


class MonitorsMixin(SqlBase):
    # ---------------------------------------------------------------- helpers

    def _monitor_row(self, conn: Connection, name: str, *, hold: bool = False) -> Row:
        """The monitor's row, or MonitorNotFoundError; ``hold`` keeps it from being deleted
        until the transaction ends (PostgreSQL; SQLite writers are serialised)."""
        query = select(monitors).where(monitors.c.name == name)
        if hold and self._db.dialect != "sqlite":
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        if row is None:
            raise _not_found(name)
        return row

    def _monitor_event(
        self,
        conn: Connection,
        kind: str,
        name: str,
        payload_text: str,
        actor: str | None,
        time: int,
    ) -> int:
        """Append a monitor's event in the caller's transaction; its id."""
        result = conn.execute(
            insert(events).values(
                time=time,
                kind=kind,
                subject_type=MONITOR_SUBJECT,
                subject_id=name,
                actor=actor,
                payload=payload_text,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    # ---------------------------------------------------------------- monitors

    def create_monitor(
        self, name: str, spec: Mapping[str, Any], *, actor: str | None = None
    ) -> Monitor:
        name = check_monitor_name(name)
        plain, text = check_spec(spec)
        clean_actor = check_actor(actor)

        def write(conn: Connection) -> Monitor:
            now = now_ms()
            conn.execute(
                insert(monitors).values(
                    name=name, spec=text, creation_time=now, last_update_time=now
                )
            )
            payload = dump_json({"spec": plain})
            self._monitor_event(conn, "monitor.created", name, payload, clean_actor, now)
            return Monitor(name=name, spec=plain, creation_time=now, last_update_time=now)

        try:
            return self._db.write(write)
        except SqlIntegrityError:
            raise AlreadyExistsError(
                f"A monitor named {name!r} already exists.", name=name
            ) from None

    def get_monitor(self, name: str) -> Monitor:
        name = check_monitor_name(name)
        with self._db.read() as conn:
            return _to_monitor(self._monitor_row(conn, name))

    def list_monitors(self) -> list[Monitor]:
        with self._db.read() as conn:
            rows = conn.execute(select(monitors).order_by(monitors.c.name))
            return [_to_monitor(row) for row in rows]

    def update_monitor(
        self, name: str, spec: Mapping[str, Any], *, actor: str | None = None
    ) -> Monitor:
        name = check_monitor_name(name)
        plain, text = check_spec(spec)
        clean_actor = check_actor(actor)

        def write(conn: Connection) -> Monitor:
            row = self._monitor_row(conn, name, hold=True)
            now = max(now_ms(), row.last_update_time)
            conn.execute(
                update(monitors)
                .where(monitors.c.monitor_id == row.monitor_id)
                .values(spec=text, last_update_time=now)
            )
            payload = dump_json({"spec": plain})
            self._monitor_event(conn, "monitor.updated", name, payload, clean_actor, now)
            return Monitor(
                name=name, spec=plain, creation_time=row.creation_time, last_update_time=now
            )

        return self._db.write(write)

    def delete_monitor(self, name: str, *, actor: str | None = None) -> None:
        name = check_monitor_name(name)
        clean_actor = check_actor(actor)

        def write(conn: Connection) -> None:
            row = self._monitor_row(conn, name, hold=True)
            conn.execute(
                delete(monitor_results).where(monitor_results.c.monitor_id == row.monitor_id)
            )
            conn.execute(delete(monitors).where(monitors.c.monitor_id == row.monitor_id))
            # the spec it had, so the history says what was deleted
            payload = '{"spec":' + row.spec + "}"
            self._monitor_event(conn, "monitor.deleted", name, payload, clean_actor, now_ms())

        self._db.write(write)

    # ---------------------------------------------------------------- results

    def record_monitor_result(
        self,
        name: str,
        *,
        window_start: int,
        window_end: int,
        status: str,
        summary: Mapping[str, Any],
        late: bool = False,
    ) -> MonitorResult:
        args = check_result(
            name,
            window_start=window_start,
            window_end=window_end,
            status=status,
            summary=summary,
            late=late,
        )

        def write(conn: Connection) -> MonitorResult:
            row = self._monitor_row(conn, args.name, hold=True)
            now = now_ms()
            values = {
                "monitor_id": row.monitor_id,
                "window_start": args.window_start,
                "window_end": args.window_end,
                "late": args.late,
                "status": args.status,
                "summary": args.summary_text,
                "created_time": now,
            }
            self._upsert(
                conn,
                monitor_results,
                values,
                keys=["monitor_id", "window_start", "window_end", "late"],
                columns=["status", "summary", "created_time"],
            )
            return MonitorResult(
                name=args.name,
                window_start=args.window_start,
                window_end=args.window_end,
                status=args.status,
                summary=args.summary,
                created_time=now,
                late=args.late,
            )

        try:
            return self._db.write(write)
        except SqlIntegrityError:  # the monitor went between the read and the write
            raise _not_found(args.name) from None

    def list_monitor_results(
        self,
        name: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        late: bool | None = None,
        newest: bool = False,
    ) -> list[MonitorResult]:
        query = check_result_query(
            name, start=start, end=end, limit=limit, late=late, newest=newest
        )
        table = monitor_results
        with self._db.read() as conn:
            row = self._monitor_row(conn, query.name)
            if query.empty:
                return []
            select_results = select(table).where(table.c.monitor_id == row.monitor_id)
            if query.end is not None:
                select_results = select_results.where(table.c.window_start < query.end)
            if query.start is not None:
                select_results = select_results.where(table.c.window_end > query.start)
            if query.late is not None:
                select_results = select_results.where(table.c.late == query.late)
            order: list[Any] = [table.c.window_start, table.c.window_end, table.c.late]
            if query.newest:
                order = [column.desc() for column in order]
            found = [
                MonitorResult(
                    name=query.name,
                    window_start=result.window_start,
                    window_end=result.window_end,
                    status=result.status,
                    summary=json.loads(result.summary),
                    created_time=result.created_time,
                    late=bool(result.late),
                )
                for result in conn.execute(select_results.order_by(*order).limit(query.limit))
            ]
        return found[::-1] if query.newest else found

    # ---------------------------------------------------------------- events

    def record_monitor_event(
        self,
        name: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> MonitorEvent:
        name, checked_kind, plain, text, clean_actor = check_event(name, kind, payload, actor)

        def write(conn: Connection) -> MonitorEvent:
            self._monitor_row(conn, name, hold=True)
            now = now_ms()
            event_id = self._monitor_event(conn, checked_kind, name, text, clean_actor, now)
            return MonitorEvent(
                event_id=event_id,
                time=now,
                kind=checked_kind,
                monitor=name,
                actor=clean_actor,
                payload=plain,
            )

        return self._db.write(write)

    def list_monitor_events(
        self,
        name: str | None = None,
        *,
        kinds: Sequence[str] | None = None,
        since: int | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[MonitorEvent]:
        query = check_event_query(name, kinds=kinds, since=since, limit=limit, newest=newest)
        if query.kinds == ():
            return []
        found = select(events).where(events.c.subject_type == MONITOR_SUBJECT)
        if query.name is not None:
            found = found.where(events.c.subject_id == query.name)
        if query.kinds is not None:
            found = found.where(events.c.kind.in_(query.kinds))
        if query.since is not None:
            found = found.where(events.c.time >= query.since)
        order: list[Any] = [events.c.time, events.c.event_id]
        if query.newest:
            order = [column.desc() for column in order]
        found = found.order_by(*order).limit(query.limit)
        with self._db.read() as conn:
            listed = [
                MonitorEvent(
                    event_id=int(row.event_id),
                    time=row.time,
                    kind=row.kind,
                    monitor=row.subject_id,
                    actor=row.actor,
                    payload=json.loads(row.payload or "{}"),
                )
                for row in conn.execute(found)
            ]
        return listed[::-1] if query.newest else listed
