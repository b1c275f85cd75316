"""``/ws/live/``: the live-fragment channel — HTML fragments for htmx's WebSocket extension.

Pages (server-rendered, session login) subscribe to **topics**; each topic is registered in code
with :func:`register_live_topic` and says which channel-layer groups it listens to and how it turns
a channel-layer message into HTML. The fragments are elements carrying ``hx-swap-oob`` (an ``id``
and ``hx-swap-oob="true"``, or another swap such as ``"beforeend:#log-rows"``): htmx swaps each into
the page by its target. No JSON, no client-side templating (issue 4, §1 "UI channels").

Page side
---------
::

    {% htmx_script extensions="hx-ws" %}          {# base.html does this #}
    <section hx-ext="ws" ws-connect="/ws/live/?topics=orders,positions"> ... </section>

Topic names are comma-separated. A topic registered with ``takes_argument=True`` is requested as
``name:<argument>`` (``order:0192f0c4-...`` follows one order); the argument (at most 128
characters of letters, digits, ``-``, ``_``, ``.`` and ``:``) is passed to its callables as the
keyword ``argument``. An unknown topic, a missing or unexpected argument, or an argument a
topic's ``groups`` refuses (it raises :class:`LiveTopicRefused`) closes the connection with
**4400** / **4403**; no session closes with **4401**. Before any of these closes the page is sent
its notice saying why (:func:`refusal_notice`): htmx does not reconnect then, and the page must not
look live when it no longer is.

Connection: the same stack as ``/ws/orders/`` (``odum_live/asgi.py``): session authentication
(``AuthMiddlewareStack``) and the browser ``Origin`` check, so another site cannot ride a
logged-in session. Programs use ``/ws/orders/`` (JSON), not this channel.

Access withdrawn while connected: the connection also joins its user's group
(:func:`odum_live.groups.user_group`). On ``access.changed`` (sent after commit when the user logs
out, is deactivated or deleted, or their groups, permissions or strategies change:
``orders.services.access``) it reads the session again as stored now (:func:`session_user`) and
calls every topic's ``groups`` again with that user: a session that no longer authenticates the
user closes with **4401**, a topic now refused with **4403** (each after the page's notice);
otherwise the connection goes on with the new groups and renders for the user as they are now. The
same check runs every hour (``settings.ODUM["WS_RENEW_SECS"]``, :mod:`odum_live.ws_renewal`, as on
``/ws/orders/``) for what no change announces: the session's age passing (``SESSION_COOKIE_AGE``,
``set_expiry``), the session deleted from its store, a lost push. Every check runs in the
connection's turn (Channels hands it one message at a time): a push queued behind it is rendered for
the user as the check left them, or not at all after a close — never for the access withdrawn.

Contract for a topic (the page's fragment and the reloaded page must agree)
---------------------------------------------------------------------------
``register_live_topic(name, *, groups, render, takes_argument=False)``

``groups(user[, argument=...]) -> list[str]``
    The channel-layer groups this user's subscription joins — only what the user may see (for
    orders: ``"orders"`` for a holder of ``orders.view_order``, else ``"strategy.<id>"`` of each
    strategy they trade; names from :mod:`odum_live.groups`). Runs in a thread (database access is
    fine). An empty list means nothing to follow (the connection stays open, silent). Raise
    :class:`LiveTopicRefused` to refuse the subscription (4403).
``render(message, user[, argument=...]) -> str | None``
    Called (in a thread, via ``database_sync_to_async``) for every channel-layer message arriving
    on one of the topic's groups; returns HTML to send, or None to send nothing (another message
    type, an object outside the user's scope, nothing to show). It must re-read what it shows
    through a selector — messages carry ids, never data (CONVENTIONS.md) — and render **the same
    template partial the page includes**, with ``hx-swap-oob`` on the outer element(s). An
    exception is logged and the message dropped; the connection stays up.

On connect, each subscribed topic's ``render`` is called once with ``{"type": "live.connected"}``
(:data:`CONNECTED`): a topic may answer with the current state, closing the gap between the page's
render and its subscription (a change committed in between would otherwise be missed until the
next one); most list topics return None for it.

Channel-layer messages: any ``type`` other than ``websocket.*`` (``orders.updated`` from
:mod:`orders.services.publish`; ``positions.updated``, ``logs.appended``, ``status.changed`` …
from other publishers). A message that names its group (``"group": <name>``, or ``"stream":
<name>`` as ``orders.updated`` does) goes only to the subscribed topics that joined that group;
one that does not goes to every subscribed topic. Each topic renders at most once per message.
Publishers send small messages to groups they also name in :mod:`odum_live.groups`, after commit.

Registered topics: ``orders``, ``order:<order id>`` and ``ticket:<order id>`` (:mod:`orders.web.live`);
``positions``, ``logs``, ``status`` by their apps. Registration happens in the apps' ``ready()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import re
from collections.abc import Callable
from datetime import timezone as dt_timezone
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.template.loader import render_to_string
from django.utils import timezone

from odum_live.groups import ACCESS_CHANGED, user_group
from odum_live.ws_renewal import renew_periodically

logger = logging.getLogger(__name__)

#: Most topics one connection may follow.
MAX_TOPICS = 16
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ARGUMENT = re.compile(r"[-A-Za-z0-9_.:]{1,128}")

#: The message each topic renders once when the connection opens (its current state, or None).
CONNECTED = {"type": "live.connected"}

#: Close codes (as ``/ws/orders/``).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_INVALID = 4400


class LiveTopicRefused(Exception):
    """Raised by a topic's ``groups`` when the user may not follow the requested argument."""


@dataclass(frozen=True, slots=True)
class LiveTopic:
    """A registered topic: see the module docstring for the contract of ``groups`` and ``render``."""

    name: str
    groups: Callable[..., list[str]]
    render: Callable[..., str | None]
    takes_argument: bool = False


_TOPICS: dict[str, LiveTopic] = {}


def register_live_topic(
    name: str,
    *,
    groups: Callable[..., list[str]],
    render: Callable[..., str | None],
    takes_argument: bool = False,
) -> LiveTopic:
    """Register (or replace) the live topic ``name``.

    Parameters
    ----------
    name : str
        Lower-case letters, digits, ``-`` or ``_``, starting with a letter, ≤ 32 characters.
    groups : Callable[[User], list[str]]
        The channel-layer groups a user's subscription joins (``argument=`` keyword too when
        ``takes_argument``); may raise :class:`LiveTopicRefused`.
    render : Callable[[dict, User], str | None]
        HTML (out-of-band swap elements) for one channel-layer message, or None.
    takes_argument : bool
        The topic is requested as ``name:<argument>``.

    Returns
    -------
    LiveTopic

    Raises
    ------
    ValueError
        A malformed name, or callables that are coroutines (they run in a thread).
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"live topic name {name!r}: use lower-case letters, digits, '-' or '_' (≤ 32)")
    if inspect.iscoroutinefunction(groups) or inspect.iscoroutinefunction(render):
        raise ValueError(f"live topic {name!r}: groups and render must be plain functions (run in a thread)")
    topic = LiveTopic(name=name, groups=groups, render=render, takes_argument=takes_argument)
    _TOPICS[name] = topic
    return topic


def live_topic(name: str) -> LiveTopic | None:
    """Return the registered topic ``name``, or None."""
    return _TOPICS.get(name)


@dataclass(frozen=True, slots=True)
class _Subscription:
    topic: LiveTopic
    argument: str | None
    groups: frozenset[str]

    def kwargs(self) -> dict:
        return {"argument": self.argument} if self.topic.takes_argument else {}


class _Refused(Exception):
    # ``why``: the reason in a person's words, for the page's notice (default: ``detail``).
    def __init__(self, code: int, detail: str, why: str | None = None):
        self.code = code
        self.why = why or detail
        super().__init__(detail)


def parse_topics(query_string: bytes) -> list[tuple[LiveTopic, str | None]]:
    """Parse ``?topics=a,b:arg`` into (topic, argument) pairs, in order, without duplicates.

    Raises
    ------
    _Refused
        4400: no or too many topics, an unknown topic, a missing / unexpected / malformed argument.
    """
    try:
        params = parse_qs(query_string.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Refused(CLOSE_INVALID, "the query string is not UTF-8") from None
    raw = ",".join(params.get("topics", []))
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise _Refused(CLOSE_INVALID, "topics: name at least one topic, e.g. ?topics=orders")
    if len(names) > MAX_TOPICS:
        raise _Refused(CLOSE_INVALID, f"topics: at most {MAX_TOPICS}")
    out: list[tuple[LiveTopic, str | None]] = []
    for requested in dict.fromkeys(names):
        name, _, argument = requested.partition(":")
        topic = _TOPICS.get(name)
        if topic is None:
            known = ", ".join(sorted(_TOPICS)) or "none registered"
            raise _Refused(CLOSE_INVALID, f"topics: unknown topic {name!r} (known: {known})")
        if topic.takes_argument and not _ARGUMENT.fullmatch(argument):
            raise _Refused(CLOSE_INVALID, f"topics: {name!r} needs an argument, as {name}:<id>")
        if not topic.takes_argument and argument:
            raise _Refused(CLOSE_INVALID, f"topics: {name!r} takes no argument")
        out.append((topic, argument or None))
    return out


def _subscribe(user, requested: list[tuple[LiveTopic, str | None]]) -> list[_Subscription]:
    subscriptions = []
    for topic, argument in requested:
        kwargs = {"argument": argument} if topic.takes_argument else {}
        try:
            groups = topic.groups(user, **kwargs)
        except LiveTopicRefused as exc:
            raise _Refused(CLOSE_FORBIDDEN, f"topics: {topic.name}: {exc}", why=str(exc)) from None
        subscriptions.append(_Subscription(topic=topic, argument=argument, groups=frozenset(groups)))
    return subscriptions


def session_fingerprint(session_key: str) -> str:
    """Return the SHA-256 (hex) of a session key: how a channel-layer message names a session, never by its key."""
    return hashlib.sha256(session_key.encode()).hexdigest()


def session_user(scope, *, ended_session: str | None = None):
    """Return the user the connection's session authenticates *now*, as a new request would get it.

    Channels resolves ``scope["user"]`` once, at the handshake, from the session then loaded. This
    reads the session again from its store (``SESSION_ENGINE``) and runs Django's own
    :func:`django.contrib.auth.get_user` on it: a logged-out or expired session, a deactivated
    or deleted user, or a password changed since the login (session hash) give ``AnonymousUser``.
    Database access: call it in a thread (``database_sync_to_async``).

    Parameters
    ----------
    scope : dict
        The connection's ASGI scope (``scope["session"]`` from ``SessionMiddleware``).
    ended_session : str | None
        :func:`session_fingerprint` of a session being logged out (``access.changed`` of a logout,
        sent before Django flushes the session): that session gives ``AnonymousUser`` at once.
    """
    from django.contrib.auth.models import AnonymousUser  # models: not at import time

    key = getattr(scope.get("session"), "session_key", None)
    if not key or (ended_session is not None and session_fingerprint(key) == ended_session):
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    return get_user(SimpleNamespace(session=store))


def _resubscribe(scope, user_pk, requested: list[tuple[LiveTopic, str | None]], ended_session: str | None):
    # (user as now, subscriptions as now) after access.changed; or _Refused (4401 / 4403).
    user = session_user(scope, ended_session=ended_session)
    if not user.is_authenticated or user.pk != user_pk:
        raise _Refused(CLOSE_UNAUTHENTICATED, "your session ended: log in again")
    return user, _subscribe(user, requested)


def refusal_notice(code: int, reason: str) -> str:
    """Return the page's notice that its live updates stopped, to send before closing with ``code``.

    The partial ``_live_notice.html`` (``templates/base.html`` holds it hidden) filled in, out of band
    (``hx-swap-oob``): htmx shows it in place of the hidden one, so the page says why it no longer changes
    and what to do, instead of going on as if live (htmx does not reconnect after a 44xx close).

    Parameters
    ----------
    code : int
        The close code to follow: 4401 (the session no longer authenticates: the notice gives ``reason``
        and asks to log in again), 4403 (the page's subject is out of the person's scope now: "you may
        no longer see what this page follows", ``reason`` after it) or 4400 (a malformed request).
    reason : str
        Why, in words (``your session ended: log in again``, ``no order 0192…``).
    """
    stopped_at = timezone.now().astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return render_to_string("_live_notice.html", {"oob": True, "code": code, "reason": reason,
                                                  "stopped_at": stopped_at})


class LiveFragmentConsumer(AsyncWebsocketConsumer):
    """``/ws/live/``: join the groups of the requested topics, send each topic's rendered HTML.

    Interface only (CONVENTIONS.md): which groups and what HTML are the topics' business. Access is
    checked again on ``access.changed`` and periodically (:mod:`odum_live.ws_renewal`): see the module
    docstring.
    """

    async def connect(self):
        self.subscriptions: list[_Subscription] = []
        self.joined: frozenset[str] = frozenset()
        self._renewer: asyncio.Task | None = None
        await self.accept()  # before any close, so the browser sees the close code
        user = self.scope.get("user")
        try:
            if user is None or not user.is_authenticated:
                raise _Refused(CLOSE_UNAUTHENTICATED, "log in first")
            requested = parse_topics(self.scope.get("query_string", b""))
            self.subscriptions = await database_sync_to_async(_subscribe)(user, requested)
        except _Refused as refused:
            await self.send(text_data=refusal_notice(refused.code, refused.why))
            await self.close(code=refused.code)
            return
        self.user = user
        self.user_group = user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self._join(frozenset().union(*(s.groups for s in self.subscriptions)))
        await self._fan_out(dict(CONNECTED))
        self._renewer = asyncio.create_task(renew_periodically(self, renew=self._renew_groups))

    async def disconnect(self, code):
        if getattr(self, "_renewer", None) is not None:
            self._renewer.cancel()
        await self._join(frozenset())
        if getattr(self, "user_group", None):
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def _join(self, groups: frozenset[str]) -> None:
        # Be a member of exactly ``groups`` (of the topics' groups; the user's own group apart).
        joined = getattr(self, "joined", frozenset())
        for group in sorted(groups - joined):
            await self.channel_layer.group_add(group, self.channel_name)
        for group in sorted(joined - groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = groups

    async def _renew_groups(self) -> None:
        # odum_live.ws_renewal, before its periodic access.changed (handled in this consumer's turn).
        if self.subscriptions:
            for group in sorted(self.joined | {self.user_group}):
                await self.channel_layer.group_add(group, self.channel_name)

    async def _access_changed(self, message: dict) -> None:
        # The user's access changed (orders.services.access), or the periodic check (odum_live.ws_renewal):
        # the session and every topic again.
        if not self.subscriptions:
            return
        requested = [(s.topic, s.argument) for s in self.subscriptions]
        try:
            self.user, self.subscriptions = await database_sync_to_async(_resubscribe)(
                self.scope, self.user.pk, requested, message.get("ended_session"))
        except _Refused as refused:
            self.subscriptions = []
            await self._join(frozenset())
            await self.send(text_data=refusal_notice(refused.code, refused.why))
            await self.close(code=refused.code)
            return
        await self._join(frozenset().union(*(s.groups for s in self.subscriptions)))

    async def receive(self, text_data=None, bytes_data=None):
        # htmx's ws extension sends form values for ws-send; pages here only listen.
        return

    async def dispatch(self, message):
        if message.get("type", "").startswith("websocket."):
            return await super().dispatch(message)
        if message.get("type") == ACCESS_CHANGED:
            return await self._access_changed(message)
        await self._fan_out(message)

    async def _fan_out(self, message: dict) -> None:
        origin = message.get("group") or message.get("stream")
        targeted = origin in self.joined
        for subscription in self.subscriptions:
            if targeted and origin not in subscription.groups:
                continue
            try:
                html = await database_sync_to_async(subscription.topic.render)(
                    message, self.user, **subscription.kwargs()
                )
            except Exception:  # noqa: BLE001 - one bad render must not end the page's live updates
                logger.exception("live topic %s: render of %s failed; message dropped",
                                 subscription.topic.name, message.get("type"))
                continue
            if html:
                await self.send(text_data=html)
