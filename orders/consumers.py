"""``/ws/orders/``: the JSON order stream for programs (and people).

Source of the requirements: issue 4, section 1 ("WebSocket channels"); scope rules from
:mod:`orders.selectors`; numbering from :mod:`orders.services.publish`.

Authentication
--------------
``Authorization: Bearer <token>`` — the order API's knox token, checked exactly as the API checks
it (:class:`orders.api.authentication.BearerTokenAuthentication`) — or a logged-in session (the
browser; its connection must carry an allowed ``Origin``). A token in the URL is refused (an
unknown query parameter), and tokens are never logged. The connection is accepted, then closed
with a code when it cannot go on; an ``error`` message says why first:

=====  ======================================================================================
code   meaning
=====  ======================================================================================
4400   malformed query parameters (``error: invalid``)
4401   no credentials, or a bad / expired token (``error: unauthenticated``)
4403   a filter outside the caller's scope, or no strategy visible at all (``error: forbidden``)
4404   a person allowed to see every strategy named one that does not exist (``error: not_found``)
1011   the server cannot read the stream or the database; reconnect with ``?since=<seq>``
=====  ======================================================================================

Scope (:mod:`orders.selectors`): a strategy token sees its own strategy only; a person holding
``orders.view_order`` sees every strategy; another person sees the strategies they trade.

Access withdrawn while connected: when the caller's access changes — their token revoked (or
expired and deleted), their session logged out, their account deactivated or deleted, their
groups, permissions or strategies changed (:mod:`orders.services.access` sends ``access.changed``
after commit) — the connection authenticates again (the same token, or the session as stored now)
and takes its subscription again with the scope as it is now: ``error`` then close **4401** when
the credentials no longer hold, **4403** when the subscription is now outside the scope;
otherwise it goes on, in the new scope. The same check runs every hour (``WS_RENEW_SECS``,
:mod:`odum_live.ws_renewal`) for what no change announces: a token's expiry or the session's age
passing, a session deleted from its store, a lost push. It runs in the connection's turn, as an
announced change does: no delta read for the old scope is sent after the close or the narrowing.

Subscribing
-----------
Query parameters, all optional: ``strategy`` (strategy id), ``instrument`` (canonical key: matches
the requested key or the routed listing; an ``ANY:`` key for positions means the instrument across
venues), ``venue`` (venue code), ``since`` (resume after this sequence number) and ``stream`` (the
stream ``since`` came from; when given and different, the server answers with a snapshot)::

    wss://oms.example.com/ws/orders/?venue=BINANCE-SPOT
    wss://oms.example.com/ws/orders/?since=1732260000000042&stream=strategy.alpha

The same, later, as a message (replaces the subscription; errors keep the old one)::

    {"action": "subscribe", "strategy": "alpha", "instrument": null, "venue": null, "since": null}

Other client messages: ``{"action": "snapshot"}`` (a fresh snapshot now), ``{"action": "ping"}``
(answered by ``pong`` with the current number). A message that is not one of these — not JSON,
not an object, an unknown action or field, a bad value — is answered by an ``error`` message
(``error: invalid``, ``fields`` naming each bad field) and the connection stays up.

Server messages
---------------
Every message is a JSON object with ``type``::

    {"type": "snapshot", "stream": "orders", "seq": 1732260000000041,
     "filters": {"strategy": null, "instrument": null, "venue": null},
     "orders": [<order>...], "positions": [<instrument position>...]}
    {"type": "delta", "stream": "orders", "seq": 1732260000000042,
     "order": <order>, "events": [<timeline entry>...], "fills": [<fill>...], "position": <instrument position> | null}
    {"type": "resumed", "stream": "orders", "since": 1732260000000039, "seq": 1732260000000042}
    {"type": "snapshot_required", "stream": "orders", "since": 1732259000000000, "reason": "..."}
    {"type": "pong", "stream": "orders", "seq": 1732260000000042}
    {"type": "error", "error": "invalid", "detail": "...", "fields": {"since": ["..."]}}

``<order>``, ``<fill>``, ``<timeline entry>`` and ``<instrument position>`` are the order API's
shapes (``OrderOutputSerializer``, ``FillOutputSerializer``, ``OrderEventOutputSerializer``,
``InstrumentPositionOutputSerializer``): decimals as strings, times ISO-8601 UTC.

- ``snapshot``: the open orders in scope (newest first) and the positions, as of ``seq``.
- ``delta``: one change of one order, after ``seq - 1``: the order as it is *now* (at least as new
  as the change), the timeline entries and fills first published with this change, and — when
  there are fills — the order's strategy's position in the routed listing. A delta may repeat a
  change the snapshot already shows: apply deltas as upserts by ``order_id``.
- ``resumed``: the deltas missed since ``since`` have been sent (possibly none).
- ``snapshot_required``: what was missed cannot be sent (too old, or the stream started over);
  a ``snapshot`` follows on the same connection. Drop the local state and take it.

Sequence numbers and resuming
-----------------------------
Numbers belong to a **stream**: ``strategy.<id>`` when the subscription is to one strategy (a
strategy token, or the ``strategy`` filter), else ``orders``. Within a stream every change of
every order gets the next number, assigned after commit in one place
(:mod:`orders.services.publish`); the deltas a client receives are ascending and, for an
unfiltered strategy stream, consecutive (with instrument / venue filters or a partial scope the
numbers of hidden changes are skipped). Keep the highest number seen in any message (``pong`` and
``resumed`` advance it too) and reconnect with ``?since=<seq>&stream=<stream>`` and the same
filters: the server sends every delta after it, then ``resumed``; or, when it cannot guarantee
that nothing is missing, ``snapshot_required`` and a snapshot. It never skips a change silently.
Send ``ping`` now and then on a quiet connection (it also renews the subscription).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qs

from asgiref.sync import SyncToAsync
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from rest_framework.exceptions import AuthenticationFailed

from odum_live.groups import ORDERS_UPDATED, user_group
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from odum_live.live import session_user
from odum_live.ws_renewal import renew_periodically
from orders.api.authentication import BearerTokenAuthentication
from orders.api.serializers import (
    FillOutputSerializer,
    InstrumentPositionOutputSerializer,
    OrderEventOutputSerializer,
    OrderOutputSerializer,
)
from orders.selectors import OrderAccess, StrategyNotFound, order_access_for
from orders.services.publish import (
    StreamEntry,
    StreamForbidden,
    Subscription,
    order_stream_after,
    order_stream_change,
    order_stream_head,
    order_stream_open_orders,
    order_stream_positions,
    order_stream_subscribe,
)

logger = logging.getLogger(__name__)

#: Largest client message accepted, in characters.
MAX_MESSAGE_CHARS = 4096
#: Subscribers the hub sends a change to before it lets the event loop run (daphne writes the
#: frames to the sockets only then): the first subscribers need not wait for the last.
FAN_OUT_BATCH = 50
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_VENUE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
_PARAMS = ("strategy", "instrument", "venue", "since", "stream")
_ACTIONS = ("subscribe", "snapshot", "ping")


class RequestInvalid(Exception):
    """Malformed query parameters or client message; ``fields`` maps a field to its reasons."""

    def __init__(self, detail: str, fields: dict[str, list[str]] | None = None):
        self.fields = fields or {}
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """Validated subscription parameters."""

    strategy: str | None = None
    instrument: str | None = None
    venue: str | None = None
    since: int | None = None
    stream: str | None = None


def _request(values: dict) -> StreamRequest:
    # values: field → str | int | None (query strings give strings, messages JSON values).
    errors: dict[str, list[str]] = {}
    for name in sorted(set(values) - set(_PARAMS)):
        errors[name] = [f"is not a parameter of /ws/orders/ (expected {', '.join(_PARAMS)})"]
    clean: dict = {}
    for name in ("strategy", "instrument", "venue", "stream"):
        value = values.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            errors[name] = ["must be a string"]
        elif name == "strategy" and not _SLUG.fullmatch(value):
            errors[name] = ["must be a strategy id (letters, digits, '-' or '_', at most 64)"]
        elif name == "venue" and not _VENUE.fullmatch(value):
            errors[name] = ["must be a venue code such as BINANCE-SPOT"]
        elif name == "stream" and len(value) > 100:
            errors[name] = ["must be at most 100 characters"]
        elif name == "instrument":
            try:
                if len(value) > 128:
                    raise ValueError("must be at most 128 characters")
                parse_instrument_key(value)
            except (InstrumentKeyError, ValueError) as exc:
                errors[name] = [str(exc)]
            else:
                clean[name] = value
        else:
            clean[name] = value
    since = values.get("since")
    if since is not None and since != "":
        if isinstance(since, str) and since.isascii() and since.isdigit():
            since = int(since)
        if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since < 2**63:
            errors["since"] = ["must be a sequence number: an integer ≥ 0 from a snapshot, delta, pong or resumed"]
        else:
            clean["since"] = since
    if errors:
        raise RequestInvalid("invalid subscription: " + "; ".join(f"{k}: {v[0]}" for k, v in errors.items()), errors)
    return StreamRequest(**clean)


def parse_query(query_string: bytes) -> StreamRequest:
    """Parse the connection's query string.

    Raises
    ------
    RequestInvalid
        An unknown or repeated parameter, or a bad value.
    """
    try:
        parsed = parse_qs(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise RequestInvalid("the query string is not UTF-8") from None
    repeated = {name: ["is given more than once"] for name, values in parsed.items() if len(values) > 1}
    if repeated:
        raise RequestInvalid("repeated query parameters: " + ", ".join(sorted(repeated)), repeated)
    return _request({name: values[0] for name, values in parsed.items()})


def parse_message(text_data: str | None, bytes_data: bytes | None) -> tuple[str, StreamRequest | None]:
    """Parse a client message into (action, subscription parameters for ``subscribe``).

    Raises
    ------
    RequestInvalid
        Binary, too long, not JSON, not an object, unknown action or field, bad value.
    """
    if text_data is None:
        raise RequestInvalid("send text frames holding a JSON object; binary frames are not accepted")
    if len(text_data) > MAX_MESSAGE_CHARS:
        raise RequestInvalid(f"message longer than {MAX_MESSAGE_CHARS} characters")
    try:
        message = json.loads(text_data)
    except ValueError as exc:
        raise RequestInvalid(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise RequestInvalid("the message must be a JSON object such as {\"action\": \"ping\"}")
    action = message.get("action")
    if action not in _ACTIONS:
        raise RequestInvalid(f"unknown action {action!r}: expected one of {', '.join(_ACTIONS)}",
                             {"action": [f"must be one of {', '.join(_ACTIONS)}"]})
    rest = {k: v for k, v in message.items() if k != "action"}
    if action != "subscribe":
        if rest:
            raise RequestInvalid(f"{action} takes no fields", {k: ["is not a field of " + action] for k in rest})
        return action, None
    return action, _request(rest)


# --- rendering: one encoded frame per (stream, seq) per process, shared by its subscribers --------

_CLOCK = itertools.count(1)  # orders renders in time: next() is atomic under the GIL


@dataclass(frozen=True, slots=True)
class _Frame:
    text: str
    venue: str
    instrument_key: str
    routed_instrument_key: str
    started: int   # clock before the first read
    finished: int  # clock after the last read


def _encode(body: dict) -> str:
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))


def _render_delta(entry: StreamEntry) -> _Frame | None:
    started = next(_CLOCK)
    change = order_stream_change(entry=entry)
    if change is None:
        return None
    order = change.order
    body = {
        "type": "delta", "stream": entry.stream, "seq": entry.seq,
        "order": OrderOutputSerializer().to_representation(order),
        "events": [OrderEventOutputSerializer().to_representation(e) for e in change.events],
        "fills": [FillOutputSerializer().to_representation(f) for f in change.fills],
        "position": (None if change.position is None
                     else InstrumentPositionOutputSerializer().to_representation(change.position)),
    }
    return _Frame(text=_encode(body), venue=order.venue, instrument_key=order.instrument_key,
                  routed_instrument_key=order.routed_instrument_key, started=started, finished=next(_CLOCK))


def _render_snapshot(access: OrderAccess, subscription: Subscription) -> tuple[str, int, int]:
    # (frame, head, clock after the reads); the head is read before the orders, so the snapshot
    # covers every change numbered up to it.
    head = order_stream_head(stream=subscription.stream)
    orders = [OrderOutputSerializer().to_representation(o)
              for o in order_stream_open_orders(access=access, subscription=subscription)]
    positions = [InstrumentPositionOutputSerializer().to_representation(p)
                 for p in order_stream_positions(subscription=subscription)]
    body = {"type": "snapshot", "stream": subscription.stream, "seq": head, "filters": subscription.filters(),
            "orders": orders, "positions": positions}
    return _encode(body), head, next(_CLOCK)


class _RenderSyncToAsync(SyncToAsync):
    """``database_sync_to_async`` for renders, keeping a usable connection open afterwards.

    ``database_sync_to_async`` closes the connection around every call (``close_old_connections``);
    with ``DB_CONN_MAX_AGE=0``, as daphne runs, each render then opened a new one: 14.6 ms instead
    of 7.5 (measured on this machine), once per change and process. A render only reads, in
    autocommit, on the one database thread; it drops the connection only when it is broken. The
    consumer's other database calls still close it as configured.
    """

    def thread_handler(self, loop, *args, **kwargs):
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and conn.errors_occurred:
                if conn.is_usable():
                    conn.errors_occurred = False
                else:
                    conn.close()
        return super().thread_handler(loop, *args, **kwargs)


_FAILED = object()
_NOT_RENDERED = object()  # the hub did not (or could not) render the frame
_OWN_TURN = object()      # the subscriber must handle the message itself
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> _StreamHub


def _hub(layer) -> _StreamHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _StreamHub(layer)
    return hub


class _FrameCache:
    """Rendered deltas by (stream, seq), so N subscribers in a process cost one set of reads.

    A subscriber takes a cached frame only if its reads *started* after the reads of everything it
    already sent finished (its ``horizon``); otherwise it renders afresh. So the order states one
    subscriber receives never go back in time, whatever the cache evicted or who rendered first.
    """

    def __init__(self, size: int = 1024) -> None:
        self._frames: OrderedDict[tuple[str, int], _Frame] = OrderedDict()
        self._pending: dict[tuple, asyncio.Future] = {}
        self._size = size

    def clear(self) -> None:
        self._frames.clear()

    async def get(self, entry: StreamEntry, *, horizon: int) -> _Frame | None:
        key = (entry.stream, entry.seq)
        frame = self._frames.get(key)
        if frame is not None and frame.started >= horizon:
            return frame
        loop = asyncio.get_running_loop()
        pending = self._pending.get((loop, key))
        if pending is not None:
            frame = await asyncio.shield(pending)
            if frame is None or (frame is not _FAILED and frame.started >= horizon):
                return frame
        future = loop.create_future()
        self._pending[(loop, key)] = future
        try:
            frame = await _RenderSyncToAsync(_render_delta)(entry)
        except BaseException:
            future.set_result(_FAILED)  # waiters render for themselves
            raise
        finally:
            if self._pending.get((loop, key)) is future:
                del self._pending[(loop, key)]
        if not future.done():
            future.set_result(frame)
        if frame is not None:
            self._frames[key] = frame
            self._frames.move_to_end(key)
            while len(self._frames) > self._size:
                self._frames.popitem(last=False)
        return frame


frames = _FrameCache()


# --- fan-out: one group member per process and stream ---------------------------------------------

class _StreamHub:
    """The process's one member of each stream's channel-layer group, fanning changes out in-process.

    Without it every subscriber joins the group itself, and each ``orders.updated`` message costs
    per subscriber a hand-off through the channel layer, a receive and a dispatch step — at 1,000
    subscribers, 1,000 of each per change (bench/ws_fanout.py measured seconds of delay at 100).
    The hub receives the message once, renders the delta once (:data:`frames`) and gives the frame
    to each subscriber that can take it as it stands (:meth:`OrderStreamConsumer._take`: not busy,
    the next number, a frame no older than what it sent). Any other subscriber gets the message on
    its own channel and handles it in its own turn (:meth:`OrderStreamConsumer.orders_updated`:
    duplicates dropped, holes filled from the log), so the per-subscriber guarantees hold.

    One hub per event loop (a daphne process has one); it leaves a group when its last subscriber
    of that stream leaves, and stops when it has none. The message contract is unchanged: the hub
    is one more member of the groups ``orders`` / ``strategy.<id>``.
    """

    def __init__(self, layer) -> None:
        self._layer = layer
        self._members: dict[str, weakref.WeakSet] = {}  # a consumer that died unannounced drops out
        self._channel: str | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def join(self, stream: str, consumer: OrderStreamConsumer) -> None:
        """Add ``consumer`` to ``stream``'s subscribers (the hub joins the group first if new to it)."""
        async with self._lock:
            if self._channel is None:
                self._channel = await self._layer.new_channel()
                self._task = asyncio.create_task(self._run(self._channel))
            members = self._members.setdefault(stream, weakref.WeakSet())
            if not members:
                await self._layer.group_add(stream, self._channel)
            members.add(consumer)

    async def leave(self, stream: str, consumer: OrderStreamConsumer) -> None:
        """Remove ``consumer`` from ``stream``'s subscribers; leave the group (and stop) when none is left."""
        async with self._lock:
            members = self._members.get(stream)
            if members is None:
                return
            members.discard(consumer)
            if members:
                return
            del self._members[stream]
            await self._layer.group_discard(stream, self._channel)
            if not self._members and self._task is not None:
                self._task.cancel()
                self._task = self._channel = None

    async def renew(self, stream: str) -> None:
        """Renew the hub's membership of ``stream``'s group (:mod:`odum_live.ws_renewal`)."""
        async with self._lock:
            if self._members.get(stream) and self._channel is not None:
                await self._layer.group_add(stream, self._channel)

    async def _run(self, channel: str) -> None:
        while True:
            try:
                message = await self._layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the layer failed (Redis down): retry; a lost message shows as a hole
                logger.exception("order stream hub: receive failed; retrying in 1 s")
                await asyncio.sleep(1)
                await self._rejoin()
                continue
            try:
                await self._fan_out(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop the hub
                logger.exception("order stream hub: fan-out of %s failed", message.get("type"))

    async def _rejoin(self) -> None:
        for stream in list(self._members):
            try:
                await self.renew(stream)
            except Exception:  # noqa: BLE001 - next failure retries
                logger.exception("order stream hub: rejoining group %s failed", stream)

    async def _fan_out(self, message: dict) -> None:
        members = self._members.get(message.get("stream"))
        if message.get("type") != ORDERS_UPDATED or not members or "seq" not in message:
            return
        entry = StreamEntry.from_message(message)  # ValueError: logged by _run
        subscribers = list(members)
        frame = _NOT_RENDERED
        if any(c._wants_frame(entry) for c in subscribers):
            try:
                frame = await frames.get(entry, horizon=0)
            except Exception:  # noqa: BLE001 - each subscriber renders (and fails) in its own turn
                logger.exception("order stream hub: render of %s %s failed", entry.stream, entry.seq)
        for i, consumer in enumerate(subscribers, 1):
            if i % FAN_OUT_BATCH == 0:
                await asyncio.sleep(0)  # let the server write what is sent so far (and clients read it)
            text = consumer._take(entry, frame)
            try:
                if text is _OWN_TURN:
                    await self._layer.send(consumer.channel_name, message)
                elif text is not None:
                    await consumer.send(text_data=text)
            except Exception:  # noqa: BLE001 - the others still get it; this one sees a hole next time
                logger.exception("order stream hub: delivery of %s %s to %s failed", entry.stream, entry.seq,
                                 consumer.channel_name)


# --- the consumer -------------------------------------------------------------------------------

class _Refused(Exception):
    def __init__(self, code: int, error: str, detail: str, fields: dict | None = None):
        self.code, self.error, self.detail, self.fields = code, error, detail, fields
        super().__init__(detail)


def _authenticate(scope, *, now: bool = False, ended_session: str | None = None) -> object:
    # The user, or _Refused(4401). A bearer header wins over a session and must be valid. ``now``: the
    # session as stored now, not as the handshake loaded it (after access.changed; ``ended_session``: a
    # logout's, odum_live.live.session_user).
    header = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            header = value
            break
    if header is not None:
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            raise _Refused(4401, "unauthenticated", "Authorization must be 'Bearer <token>'")
        try:
            user, _token = BearerTokenAuthentication().authenticate_credentials(parts[1])
        except (AuthenticationFailed, UnicodeDecodeError):
            raise _Refused(4401, "unauthenticated", "invalid token") from None
        return user
    user = session_user(scope, ended_session=ended_session) if now else scope.get("user")
    if user is None or not user.is_authenticated:
        raise _Refused(4401, "unauthenticated", "send 'Authorization: Bearer <token>' or log in")
    return user


def _reopen(scope, user_pk, subscription: Subscription, ended_session: str | None) -> tuple[OrderAccess, Subscription]:
    # After access.changed: the same credentials checked again, then the same filters in the scope as it is
    # now; or _Refused (4401, 4403).
    try:
        user = _authenticate(scope, now=True, ended_session=ended_session)
    except _Refused:
        user = None
    if user is None or user.pk != user_pk:
        raise _Refused(4401, "unauthenticated", "this connection's credentials are no longer valid (token revoked "
                                                "or expired, session ended, account deactivated): reconnect with "
                                                "valid ones")
    access = order_access_for(user=user)
    request = StreamRequest(strategy=subscription.strategy_id, instrument=subscription.instrument,
                            venue=subscription.venue)
    return access, _subscribe(access, request)


def _subscribe(access: OrderAccess, request: StreamRequest) -> Subscription:
    try:
        return order_stream_subscribe(access=access, strategy_id=request.strategy, instrument=request.instrument,
                                      venue=request.venue)
    except StreamForbidden as exc:
        raise _Refused(4403, "forbidden", str(exc)) from None
    except StrategyNotFound as exc:
        raise _Refused(4404, "not_found", str(exc)) from None


def _open(scope) -> tuple[object, OrderAccess, StreamRequest, Subscription]:
    # One trip to the database thread for the whole handshake (with DB_CONN_MAX_AGE=0 each trip
    # opens a connection): (user, access, request, subscription), or _Refused.
    user = _authenticate(scope)
    access = order_access_for(user=user)
    try:
        request = parse_query(scope.get("query_string", b""))
    except RequestInvalid as exc:
        raise _Refused(4400, "invalid", str(exc), exc.fields) from None
    return user, access, request, _subscribe(access, request)


class OrderStreamConsumer(AsyncWebsocketConsumer):
    """``/ws/orders/``: snapshot, then numbered deltas of the orders in the caller's scope.

    The protocol is this module's docstring. Interface only: authentication by
    :class:`~orders.api.authentication.BearerTokenAuthentication` or the session, scope by
    :func:`orders.selectors.order_access_for`, subscriptions, numbers and reads by
    :mod:`orders.services.publish`, output by the order API's serializers. Changes arrive through
    the process's :class:`_StreamHub`.
    """

    subscription: Subscription | None = None
    access: OrderAccess | None = None
    user_pk = None
    user_group: str | None = None  # the user's group: access.changed (orders.services.access)
    last_seq = 0   # the last number handled in the subscription's stream
    horizon = 0    # clock after the reads of everything sent (see _FrameCache)
    _busy = 0      # handlers running: the hub leaves the subscriber alone meanwhile
    _renewer: asyncio.Task | None = None

    async def connect(self):
        await self.accept()  # before any close, so the client sees the close code
        try:
            user, self.access, request, subscription = await database_sync_to_async(_open)(self.scope)
        except _Refused as refused:
            await self._error(refused.error, refused.detail, refused.fields)
            await self.close(code=refused.code)
            return
        except Exception:  # noqa: BLE001 - the database failed: the client may retry
            logger.exception("order stream: authentication or scope failed; closing")
            await self._error("server_error", "the order stream is unavailable; reconnect later")
            await self.close(code=1011)
            return
        logger.info("order stream: user %s subscribed to %s %s", getattr(user, "pk", None), subscription.stream,
                    subscription.filters())
        self.user_pk, self.user_group = user.pk, user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)  # access.changed
        await self._guard(self._start(subscription, since=request.since, stream=request.stream))
        self._renewer = asyncio.create_task(renew_periodically(self, renew=self._renew_groups))

    async def dispatch(self, message):
        # Channels' own dispatch first hops to the database thread (close_old_connections) for every
        # message, queued there behind renders and other subscribers' reads: seconds of delay at 100
        # subscribers (bench/ws_fanout.py), and handshakes timing out in a reconnect storm. Every
        # database call of this consumer goes through database_sync_to_async, which closes stale
        # connections around itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message.get('type')!r}")
        self._busy += 1
        try:
            await handler(message)
        finally:
            self._busy -= 1

    async def disconnect(self, code):
        if self._renewer is not None:
            self._renewer.cancel()
        if self.user_group is not None:
            await self.channel_layer.group_discard(self.user_group, self.channel_name)
        if self.subscription is not None:
            await _hub(self.channel_layer).leave(self.subscription.stream, self)

    async def receive(self, text_data=None, bytes_data=None):
        if self.subscription is None:
            return  # refused, closing
        try:
            action, request = parse_message(text_data, bytes_data)
        except RequestInvalid as exc:
            await self._error("invalid", str(exc), exc.fields)
            return
        if action == "ping":
            await _hub(self.channel_layer).renew(self.subscription.stream)
            await self._send({"type": "pong", "stream": self.subscription.stream, "seq": self.last_seq})
        elif action == "snapshot":
            await self._guard(self._snapshot())
        else:
            try:
                subscription = await database_sync_to_async(_subscribe)(self.access, request)
            except _Refused as refused:
                await self._error(refused.error, refused.detail)  # the old subscription stays
                return
            await self._guard(self._start(subscription, since=request.since, stream=request.stream))

    async def orders_updated(self, message):
        """Handle an ``orders.updated`` message (:meth:`StreamEntry.to_message`) the hub could not.

        A number already handled is dropped; the next number is rendered and sent (when in scope
        and matching the filters); a jump reads the missing entries from the stream log, or — when
        the log cannot supply them — sends ``snapshot_required`` and a snapshot.
        """
        subscription = self.subscription
        if subscription is None or message.get("stream") != subscription.stream or "seq" not in message:
            return  # not (or no longer) this subscription's stream
        try:
            entry = StreamEntry.from_message(message)
        except ValueError:
            logger.exception("order stream: malformed channel-layer message dropped")
            return
        if entry.seq <= self.last_seq:
            return  # already sent (read from the log, or covered by the snapshot)
        await self._guard(self._advance_to(entry))

    async def access_changed(self, message):
        """Handle ``access.changed`` (:mod:`orders.services.access`): check the credentials and the scope again.

        The subscription goes on in the scope as it is now, or the connection ends: ``error`` and
        4401 (credentials no longer valid) or 4403 (the subscription now outside the scope).
        """
        subscription = self.subscription
        if subscription is None:
            return
        try:
            access, renewed = await database_sync_to_async(_reopen)(self.scope, self.user_pk, subscription,
                                                                     message.get("ended_session"))
        except _Refused as refused:
            self.subscription = None  # nothing more is sent: the hub forgets this subscriber now
            await _hub(self.channel_layer).leave(subscription.stream, self)
            logger.info("order stream: user %s's access changed: %s; closing", self.user_pk, refused.detail)
            await self._error(refused.error, refused.detail)
            await self.close(code=refused.code)
            return
        self.access = access
        if renewed.stream == subscription.stream:
            self.subscription = renewed  # same numbers; the hub and the deltas see the new scope at once
        else:
            await self._guard(self._start(renewed, since=self.last_seq, stream=subscription.stream))

    # --- steps -------------------------------------------------------------------------------

    async def _start(self, subscription: Subscription, *, since: int | None, stream: str | None) -> None:
        previous, self.subscription = self.subscription, subscription
        if previous is None or previous.stream != subscription.stream:
            hub = _hub(self.channel_layer)
            if previous is not None:
                await hub.leave(previous.stream, self)
            await hub.join(subscription.stream, self)
        if since is None:
            await self._snapshot()
            return
        entries = None
        if stream is None or stream == subscription.stream:
            entries = await database_sync_to_async(order_stream_after)(stream=subscription.stream, after=since)
        if entries is None:
            reason = (f"since={since} is from stream {stream!r}, this subscription's is {subscription.stream!r}"
                      if stream not in (None, subscription.stream) else
                      f"the changes after {since} are no longer all in the stream's log (too old, or the stream "
                      "started over)")
            await self._send({"type": "snapshot_required", "stream": subscription.stream, "since": since,
                              "reason": reason})
            await self._snapshot()
            return
        self.last_seq = since
        for entry in entries:
            await self._deliver(entry)
        await self._send({"type": "resumed", "stream": subscription.stream, "since": since, "seq": self.last_seq})

    async def _snapshot(self) -> None:
        text, head, finished = await database_sync_to_async(_render_snapshot)(self.access, self.subscription)
        self.last_seq, self.horizon = head, max(self.horizon, finished)
        await self.send(text_data=text)

    async def _advance_to(self, entry: StreamEntry) -> None:
        if entry.seq == self.last_seq + 1:
            await self._deliver(entry)
            return
        # A hole: messages were lost (full channel buffer) or overtaken. The log has them, or says
        # it cannot: then a snapshot, never a silent skip.
        stream = self.subscription.stream
        entries = await database_sync_to_async(order_stream_after)(stream=stream, after=self.last_seq)
        if entries is None:
            await self._send({"type": "snapshot_required", "stream": stream, "since": self.last_seq,
                              "reason": f"the changes after {self.last_seq} are no longer all in the stream's log"})
            await self._snapshot()
            return
        for logged in entries:
            await self._deliver(logged)

    async def _deliver(self, entry: StreamEntry) -> None:
        self.last_seq = max(self.last_seq, entry.seq)
        subscription = self.subscription
        if not subscription.sees(entry.strategy_id):
            return
        frame = await frames.get(entry, horizon=self.horizon)
        if frame is None:
            return  # the order no longer exists
        self.horizon = max(self.horizon, frame.finished)
        if subscription.matches(venue=frame.venue, instrument_key=frame.instrument_key,
                                routed_instrument_key=frame.routed_instrument_key):
            await self.send(text_data=frame.text)

    # --- the hub's side (synchronous: nothing else of this subscriber runs meanwhile) ---------------

    def _wants_frame(self, entry: StreamEntry) -> bool:
        subscription = self.subscription
        return (not self._busy and subscription is not None and subscription.stream == entry.stream
                and entry.seq == self.last_seq + 1 and subscription.sees(entry.strategy_id))

    def _take(self, entry: StreamEntry, frame) -> str | None | object:
        # The hub's change for this subscriber: the frame's text to send, None when there is nothing
        # to send (not its stream, a number already handled, out of scope, filtered out, the order
        # gone), or _OWN_TURN when it must go through orders_updated (busy, a hole, no usable frame).
        subscription = self.subscription
        if subscription is None or subscription.stream != entry.stream or entry.seq <= self.last_seq:
            return None
        if self._busy or entry.seq != self.last_seq + 1:
            return _OWN_TURN
        if not subscription.sees(entry.strategy_id):
            self.last_seq = entry.seq
            return None
        if frame is _NOT_RENDERED or (frame is not None and frame.started < self.horizon):
            return _OWN_TURN
        self.last_seq = entry.seq
        if frame is None:
            return None  # the order no longer exists
        self.horizon = max(self.horizon, frame.finished)
        if not subscription.matches(venue=frame.venue, instrument_key=frame.instrument_key,
                                    routed_instrument_key=frame.routed_instrument_key):
            return None
        return frame.text

    async def _guard(self, step) -> None:
        # The stream log or the database failed: close (1011) so the client resumes from what it has.
        try:
            await step
        except Exception:  # noqa: BLE001 - any failure here ends the connection, never a silent skip
            logger.exception("order stream: %s failed; closing",
                             self.subscription.stream if self.subscription else "subscription")
            await self._error("server_error", "the order stream is unavailable; reconnect with ?since=<seq>")
            await self.close(code=1011)

    async def _renew_groups(self) -> None:
        # odum_live.ws_renewal, before its periodic access.changed (handled in this consumer's turn).
        if self.subscription is not None:
            await self.channel_layer.group_add(self.user_group, self.channel_name)
            await _hub(self.channel_layer).renew(self.subscription.stream)

    async def _send(self, body: dict) -> None:
        await self.send(text_data=_encode(body))

    async def _error(self, error: str, detail: str, fields: dict | None = None) -> None:
        body = {"type": "error", "error": error, "detail": detail}
        if fields:
            body["fields"] = fields
        await self._send(body)
