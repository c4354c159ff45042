"""What an officer sends to act on alarms, as declared models, and the bulk action's rule.

The body models are the HTTP contract (``web.api_workflow`` declares them with
``@contract``): types, enums and lengths are checked once at the edge. What depends on the
action — a note for report/resolve/reopen/note, a disposition code for resolve and for
nothing else — is the transition table's (:data:`alerts.transitions.RULES`), so
:func:`check` reads it there and answers the same 422 shape as the decoder
(``details = {"field", "fields"}``).

The bulk action keeps its contract: each item on its own (its own decoding, its own
transaction), results per item in order, and a bad item never loses the good ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Protocol

import msgspec

from alerts.serialize import AlarmOut
from alerts.transitions import RULES, Action, Disposition
from center.errors import CenterError, ValidationFailed, error_body
from center.text import PLAIN

if TYPE_CHECKING:
    from center.authz import Principal

MAX_NOTE: Final = 4000
MAX_BULK: Final = 500
MAX_ID: Final = 2_147_483_647

Note = Annotated[str, PLAIN, msgspec.Meta(max_length=MAX_NOTE)]
Version = Annotated[
    int, msgspec.Meta(ge=1, le=MAX_ID, description="the alarm's current version (409 if stale)")
]
AlarmId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class ActionRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /api/v1/alarms/{id}/actions``."""

    action: Action
    version: Version
    note: Note = ""
    disposition: Disposition | None = None
    add_to_baseline: bool = False
    """Resolving a ``face_mismatch`` as ``excused``: enrol its photo in the subject's face
    baseline, approved by this officer (audited)."""


class BulkItem(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: AlarmId
    version: Version


class BulkRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /api/v1/alarms/actions``: one action for many alarms. ``items`` are
    ``{id, version}`` objects, each decoded on its own (a bad one is a failed result, not a
    failed request)."""

    action: Action
    items: Annotated[
        list[Any],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_BULK,
            description="[{id, version}, ...]; each item is checked on its own",
        ),
    ]
    note: Note = ""
    disposition: Disposition | None = None


class BulkResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: int | None
    ok: bool
    status: int | msgspec.UnsetType = msgspec.UNSET
    error: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    alarm: AlarmOut | msgspec.UnsetType = msgspec.UNSET


class BulkOut(msgspec.Struct):
    results: list[BulkResult]
    ok: int


def _invalid(field: str, problem: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"field": field, "fields": {field: problem}})


def check(request: ActionRequest) -> ActionRequest:
    """The request with its note stripped, or 422 where the action's rule wants more."""
    note = request.note.strip()
    rule = RULES[request.action]
    if rule.needs_note and not note:
        raise _invalid("note", "required", f"{request.action} needs a note")
    if rule.needs_disposition and request.disposition is None:
        raise _invalid(
            "disposition",
            "required",
            f"resolve needs a disposition code; one of: {', '.join(Disposition)}",
        )
    if not rule.needs_disposition and request.disposition is not None:
        raise _invalid("disposition", "not allowed", f"{request.action} takes no disposition")
    if request.add_to_baseline and request.disposition != Disposition.EXCUSED:
        raise _invalid("add_to_baseline", "not allowed", "only when resolving as excused")
    return msgspec.structs.replace(request, note=note)


class Actor(Protocol):
    """What a batch needs of the workflow: one action on one alarm.

    A protocol rather than :class:`alerts.workflow.Workflow` itself, which imports this
    module for the request's rules: the batch stays below the workflow it drives."""

    async def act(
        self, principal: Principal, alarm_id: int, request: ActionRequest
    ) -> AlarmOut: ...


def _failed(item_id: int | None, err: CenterError) -> BulkResult:
    return BulkResult(
        id=item_id,
        ok=False,
        status=err.status,
        error=error_body(err.code, err.message, err.details),
    )


async def act_many(workflow: Actor, principal: Principal, body: BulkRequest) -> BulkOut:
    """Each item in its own transaction, in order; a refusal costs only its own item."""
    results: list[BulkResult] = []
    for raw in body.items:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        item_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        try:
            item = msgspec.convert(raw, BulkItem)
        except msgspec.ValidationError as exc:
            results.append(
                _failed(
                    item_id,
                    ValidationFailed(
                        f"each item needs an integer id and version: {exc}",
                        details={"field": "items", "fields": {"items": str(exc)}},
                    ),
                )
            )
            continue
        try:
            request = check(
                ActionRequest(
                    action=body.action,
                    version=item.version,
                    note=body.note,
                    disposition=body.disposition,
                )
            )
            alarm = await workflow.act(principal, item.id, request)
        except CenterError as err:
            results.append(_failed(item.id, err))
        else:
            results.append(BulkResult(id=item.id, ok=True, alarm=alarm))
    return BulkOut(results=results, ok=sum(1 for r in results if r.ok))
