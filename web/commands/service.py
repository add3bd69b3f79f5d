"""Accepting a command: validate, make it durable, hand it to its vehicle's actor."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol
from uuid import UUID

import orjson
import structlog
from attrs import Factory, frozen

from actors.system import ActorSystem
from db.events import BusUnavailable, Event
from db.repositories import Store, StoreUnavailable, WriteBatch
from db.writer import BatchWriter
from sovd import strict
from sovd.errors import SovdError
from sovd.records import AuditEntry, Command, new_id, utc_now
from web.auth.service import ClientInfo
from web.auth.tokens import AuthenticatedUser
from web.commands.pipeline import (
    CommandPipeline,
    Outcome,
    Tracked,
    command_audit,
    status_message,
)
from web.problems import ApiError, FieldProblem

log = structlog.get_logger(__name__)

# How long a POST waits for its row to be committed before answering 503.
ACCEPT_TIMEOUT_S = 5.0


@frozen
class CommandRequest:
    """What a client asks for; also the body of POST /api/v1/commands."""

    vehicle_id: UUID
    command_name: Annotated[str, strict.NonEmpty()]
    command_params: dict[str, Any] = Factory(dict)

    def fingerprint(self) -> str:
        document = {
            "vehicle_id": str(self.vehicle_id),
            "command_name": self.command_name,
            "command_params": self.command_params,
        }
        return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


@frozen
class Accepted:
    command: Command
    replayed: bool = False
    # The command's ids as text, when this request made it (a replay has none).
    ids: Tracked | None = None
    # Resolved once the command's terminal status is committed, when asked for.
    outcome: asyncio.Future[Outcome] | None = None


class CommandRouter(Protocol):
    async def route(self, command: Command) -> None:
        """Sends a stored command to whichever node runs its vehicle."""


class OutcomeSource(Protocol):
    def watch(self, command_id: UUID) -> asyncio.Future[Outcome]:
        """A future of how the command ends, once that is stored; ask before it can run."""
        ...


class CommandService:
    def __init__(
        self,
        store: Store,
        writer: BatchWriter,
        actors: ActorSystem,
        pipeline: CommandPipeline,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._writer = writer
        self._actors = actors
        self._pipeline = pipeline
        self._clock = clock
        self._router: CommandRouter | None = None
        self._outcomes: OutcomeSource | None = None

    def route_through(self, router: CommandRouter, outcomes: OutcomeSource) -> None:
        """Cluster mode: stored commands go to their partition's owner, which may be another
        node, and outcomes are followed through the events every node receives."""
        self._router, self._outcomes = router, outcomes

    async def submit(
        self,
        user: AuthenticatedUser,
        request: CommandRequest,
        client: ClientInfo,
        idempotency_key: str | None = None,
        *,
        await_outcome: bool = False,
    ) -> Accepted:
        """Validates, stores and queues the command. With `await_outcome`, the answer carries
        a future of how it ended (for callers that answer only once it has)."""
        parsed = self._actors.validate(
            request.vehicle_id, request.command_name, request.command_params
        )
        if idempotency_key is not None:
            held = await self._store.commands.find_idempotent(user.user_id, idempotency_key)
            if held is not None:
                return await self._replay(held.command_id, held.request_hash, request)
        if self._writer.store_unavailable:
            raise StoreUnavailable("the store is not accepting writes")
        if self._router is not None:  # the owner's mailbox is not this node's to check
            return await self._accept(user, request, client, parsed, idempotency_key, await_outcome)
        # Admission is decided here, before anything is awaited: a refused request leaves
        # no row behind, and concurrent requests cannot all take the last slot.
        self._actors.reserve(request.vehicle_id)
        if idempotency_key is None:
            return await self._accept_queued(user, request, client, parsed, await_outcome)
        try:
            accepted = await self._accept(
                user, request, client, parsed, idempotency_key, await_outcome
            )
        except BaseException:
            self._actors.release(request.vehicle_id)
            raise
        if accepted.replayed:  # the key's command was made before; this one is not queued
            self._actors.release(request.vehicle_id)
        return accepted

    async def _accept(
        self,
        user: AuthenticatedUser,
        request: CommandRequest,
        client: ClientInfo,
        parsed: object,
        idempotency_key: str | None,
        await_outcome: bool,
    ) -> Accepted:
        """Stores the command, then queues it (in the mailbox slot reserved for it, or on
        its partition's stream)."""
        command, audit, tracked, submitted_event = self._new_command(user, request, client)
        if idempotency_key is None:
            batch = WriteBatch(new_commands=[command], audit=[audit])
            await self._persist(command, batch, submitted_event)
        else:
            held = await self._store.commands.add_idempotent(
                command, idempotency_key, request.fingerprint()
            )
            if held is not None:
                return await self._replay(held.command_id, held.request_hash, request)
            self._writer.enqueue(WriteBatch(audit=[audit]), [submitted_event])

        if self._router is not None and self._outcomes is not None:
            outcome = self._outcomes.watch(command.command_id) if await_outcome else None
            try:
                await self._router.route(command)
            except BusUnavailable:
                self._refuse(command, "the bus was unavailable")
                if outcome is not None:
                    outcome.cancel()
                raise
        else:
            try:
                outcome = self._queue(command, tracked, parsed, await_outcome)
            except SovdError as exc:
                # Durable but refused (the simulator began stopping meanwhile): the command
                # must still end in a terminal state.
                self._refuse(command, str(exc))
                raise
        _accepted(command, tracked)
        return Accepted(command, ids=tracked, outcome=outcome)

    async def _accept_queued(
        self,
        user: AuthenticatedUser,
        request: CommandRequest,
        client: ClientInfo,
        parsed: object,
        await_outcome: bool,
    ) -> Accepted:
        """Queues the command in its reserved slot while its row is being stored, and
        answers once the row is committed.

        A command that only reads runs at once, so at no latency its results are often
        written in the same transaction as its row; if the row is not stored, neither are
        they. A command that changes the vehicle waits in its mailbox for the answer (the
        commands behind it too, so order holds) and never runs if the client hears 503."""
        command, audit, tracked, submitted_event = self._new_command(user, request, client)
        changes_state = self._actors.registry.get(command.command_name).changes_state
        try:
            accept = self._writer.submit(
                WriteBatch(new_commands=[command], audit=[audit]),
                [submitted_event],
                give_up_s=ACCEPT_TIMEOUT_S,
                # A read may have run already; its results follow its row into the store.
                on_late_commit=(
                    (lambda: self._refuse(command, "the store was unavailable"))
                    if changes_state
                    else None
                ),
            )
        except BaseException:
            self._actors.release(command.vehicle_id)
            raise
        assert accept.done is not None
        tracked = tracked.stored_by(accept)
        gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        try:
            outcome = self._queue(command, tracked, parsed, await_outcome, gate)
        except SovdError as exc:
            # The simulator began stopping meanwhile: once stored, the command must still
            # end in a terminal state.
            self._actors.release(command.vehicle_id)
            await accept.done
            self._refuse(command, str(exc))
            raise
        try:
            await accept.done
        except BaseException:
            gate.set_result(False)
            if changes_state:  # dropped by its actor unrun
                self._pipeline.forget(command.command_id)
            if outcome is not None:
                outcome.cancel()
            raise
        gate.set_result(True)
        self._pipeline.stats.command_accepted()
        _accepted(command, tracked)
        return Accepted(command, ids=tracked, outcome=outcome)

    def _queue(
        self,
        command: Command,
        tracked: Tracked,
        parsed: object,
        await_outcome: bool,
        gate: asyncio.Future[bool] | None = None,
    ) -> asyncio.Future[Outcome] | None:
        """Tracks the command and puts it in its reserved mailbox slot; its outcome future
        when asked for. Raises SovdError as ActorSystem.submit does."""
        self._pipeline.track(command, tracked)
        outcome = self._pipeline.await_outcome(command.command_id) if await_outcome else None
        self._actors.submit(
            command.vehicle_id,
            command.command_id,
            command.command_name,
            parsed,
            reserved=True,
            gate=gate,
        )
        return outcome

    def _new_command(
        self, user: AuthenticatedUser, request: CommandRequest, client: ClientInfo
    ) -> tuple[Command, AuditEntry, Tracked, Event]:
        """The command's row, its audit entry, its ids and its `pending` event."""
        now = self._clock()
        command = Command(
            command_id=new_id(),
            user_id=user.user_id,
            vehicle_id=request.vehicle_id,
            command_name=request.command_name,
            command_params=request.command_params,
            status="pending",
            submitted_at=now,
        )
        audit = command_audit(
            "command_submitted",
            command_id=command.command_id,
            vehicle_id=command.vehicle_id,
            user_id=user.user_id,
            at=now,
            details={"command_name": command.command_name},
            ip_address=client.ip_address,
            user_agent=client.user_agent,
        )
        tracked = Tracked.of(
            command.command_id, command.vehicle_id, command.command_name, user.user_id
        )
        submitted_event = (
            tracked.channel,
            status_message(
                tracked.command_id,
                tracked.vehicle_id,
                "pending",
                None,
                command_name=command.command_name,
            ),
        )
        return command, audit, tracked, submitted_event

    async def _persist(self, command: Command, batch: WriteBatch, event: Event) -> None:
        """Waits for the commit; answers 503 when the store is down or too slow.

        A submission already being written cannot be taken back: if it commits after the
        client heard 503, it is failed at once, so it never runs unseen."""
        await self._writer.commit(
            batch,
            [event],
            give_up_s=ACCEPT_TIMEOUT_S,
            on_late_commit=lambda: self._refuse(command, "the store was unavailable"),
        )

    def _refuse(self, command: Command, reason: str) -> None:
        """Ends a stored command that will never run; recovery at the next start covers a
        writer that is already stopping."""
        if self._writer.stopping:
            log.warning("command_left_pending", command_id=str(command.command_id))
            return
        self._pipeline.fail_unrun(command, f"not accepted: {reason}", self._clock())

    async def _replay(
        self, command_id: UUID, request_hash: str, request: CommandRequest
    ) -> Accepted:
        if request_hash != request.fingerprint():
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request body.",
                errors=[FieldProblem("Idempotency-Key", "already used for another request")],
            )
        command = await self._store.commands.get(command_id)
        if command is None:
            raise StoreUnavailable("the command held by this Idempotency-Key is not readable yet")
        return Accepted(command, replayed=True)


def _accepted(command: Command, tracked: Tracked) -> None:
    log.info(
        "command_accepted",
        command_id=tracked.command_id,
        vehicle_id=tracked.vehicle_id,
        command_name=command.command_name,
    )
