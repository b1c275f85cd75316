"""``/ws/orders/`` (orders/consumers.py) and the order stream behind it (orders/services/publish.py).

Driven through the whole ASGI application (origin check, session / bearer auth, routing) with
Channels' ``WebsocketCommunicator``. Each scenario runs in one event loop (``async_to_sync``): the
consumer's database work runs back on the test thread, and the services it reacts to are called
from that loop too, so their on-commit publications reach the consumer through the configured
channel layer (in-memory, or channels_redis with ``REDIS_URL``). The consumer reads the database
in its own steps, so these tests commit for real (``transaction=True``).
"""

import asyncio
import dataclasses
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.utils import timezone

from odum_live.asgi import application
from orders import consumers
from orders.models import Order, OrderEvent
from orders.services import order_apply_venue_event, order_cancel, order_submit
from orders.services import publish as stream
from orders.services.publish import (
    MemoryStreamLog,
    RedisStreamLog,
    order_stream_after,
    order_streams,
    publish_orders_updated,
    stream_log,
)
from tests.helpers import WS_TIMEOUT
from tests.orders.conftest import typed_request
from risk.models import RiskLimit, Scope
from tests.orders.factories import FillFactory, OrderFactory, StrategyFactory, UserFactory, make_token
from tests.risk.factories import RiskLimitFactory
from venues.events import VenueEvent, VenueEventKind

K = VenueEventKind
S = Order.Status
ETH_KEY = "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"
TIMEOUT = WS_TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)


# --- fixtures and helpers ------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _fresh_stream():
    """A fresh stream log (memory, or this run's Redis database — emptied by the cache fixture),
    frame cache and channel layer for every test."""
    stream.set_stream_log(None)
    consumers.frames.clear()
    yield
    stream.set_stream_log(None)
    consumers.frames.clear()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        async_to_sync(layer.flush)()


@pytest.fixture
def alpha(listing):
    return StrategyFactory(id="alpha")


@pytest.fixture
def beta(listing):
    return StrategyFactory(id="beta")


@pytest.fixture
def viewer(db):
    """A person holding orders.view_order (sees every strategy)."""
    user = UserFactory(username=f"viewer-{uuid.uuid4().hex[:6]}")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="orders", codename="view_order"))
    return user


def run(scenario):
    """Run ``scenario()`` (returning an awaitable) in one event loop; return its result.

    Before the loop ends, the channel layer's connections are closed in it: a consumer's channel
    receive still waiting in Redis (a refused connection's, say) then fails at once, where it could
    otherwise hold the loop's shutdown until the test timed out (seen under load on channels_redis).
    """
    async def main():
        try:
            return await scenario()
        finally:
            layer = get_channel_layer()
            if hasattr(layer, "close_pools"):
                await layer.close_pools()

    return async_to_sync(main)()


def ws(query: str = "", *, token: str | None = None, headers=()) -> WebsocketCommunicator:
    """A communicator for ``/ws/orders/?<query>`` through the whole ASGI application."""
    all_headers = list(headers)
    if token is not None:
        all_headers.append((b"authorization", f"Bearer {token}".encode()))
    return WebsocketCommunicator(application, f"/ws/orders/{'?' + query if query else ''}", headers=all_headers)


def session_headers(user, *, origin: str | None = "http://localhost") -> list:
    """Cookie (and Origin) headers of a logged-in browser session of ``user``."""
    client = Client()
    client.force_login(user)
    headers = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return headers


async def opened(communicator) -> dict:
    """Connect and return the first message (snapshot, or what a resume sends first)."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def refused(communicator) -> tuple[dict, int]:
    """Connect and return (the error message, the close code) of a refused subscription."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted first, so the client sees the close code
    error = await communicator.receive_json_from(timeout=TIMEOUT)
    closing = await communicator.receive_output(timeout=TIMEOUT)
    assert closing["type"] == "websocket.close"
    return error, closing["code"]


def db(fn, *args, **kwargs):
    """Await ``fn(*args, **kwargs)`` on the database thread (what a service call looks like from the loop)."""
    return database_sync_to_async(fn)(*args, **kwargs)


def venue_event(kind, order, *, seconds=0, **fields):
    return VenueEvent(kind=kind, client_order_id=order.client_order_id, venue="BINANCE-SPOT",
                      ts_event=timezone.now().replace(microsecond=0) + timedelta(seconds=seconds), **fields)


def venue_fill(order, trade_id, qty, px="40000", *, fee="0.4"):
    return venue_event(K.FILLED, order, seconds=1, trade_id=trade_id, last_qty=Decimal(qty), last_px=Decimal(px),
                       fee=Decimal(fee), fee_currency="USDT", liquidity="TAKER")


def apply(event):
    return db(order_apply_venue_event, event=event)


# --- authentication and scope ---------------------------------------------------------------------

def test_bearer_strategy_token_gets_snapshot_of_its_own_open_orders_only(alpha, beta):
    # Arrange
    open_alpha = OrderFactory(strategy=alpha, status=S.ACCEPTED)
    OrderFactory(strategy=alpha, status=S.FILLED, filled_quantity=Decimal("0.01"))
    OrderFactory(strategy=beta, status=S.ACCEPTED)
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        await communicator.disconnect()
        return snapshot

    # Act
    snapshot = run(scenario)

    # Assert
    assert snapshot["type"] == "snapshot" and snapshot["stream"] == "strategy.alpha"
    assert isinstance(snapshot["seq"], int) and snapshot["seq"] > 0
    assert [o["order_id"] for o in snapshot["orders"]] == [str(open_alpha.pk)]
    assert snapshot["orders"][0]["status"] == "ACCEPTED" and snapshot["orders"][0]["quantity"] == "0.01"
    assert snapshot["positions"] == []
    assert snapshot["filters"] == {"strategy": "alpha", "instrument": None, "venue": None}


@pytest.mark.parametrize("authorization", [b"Bearer not-a-real-token", b"Bearer", b"Token abc", b"Bearer a b"])
def test_bad_or_malformed_bearer_token_is_closed_4401(alpha, authorization):
    async def scenario():
        return await refused(WebsocketCommunicator(application, "/ws/orders/",
                                                   headers=[(b"authorization", authorization)]))

    error, code = run(scenario)

    assert code == 4401 and error == {"type": "error", "error": "unauthenticated", "detail": error["detail"]}
    assert "not-a-real-token" not in error["detail"]


def test_no_credentials_is_closed_4401(alpha):
    error, code = run(lambda: refused(ws()))

    assert code == 4401 and error["error"] == "unauthenticated"


def test_session_user_with_view_permission_sees_every_strategy(alpha, beta, viewer):
    # Arrange
    a = OrderFactory(strategy=alpha, status=S.ROUTED)
    b = OrderFactory(strategy=beta, status=S.SUBMITTED)
    headers = session_headers(viewer)

    async def scenario():
        communicator = ws(headers=headers)
        snapshot = await opened(communicator)
        await communicator.disconnect()
        return snapshot

    # Act
    snapshot = run(scenario)

    # Assert
    assert snapshot["stream"] == "orders"
    assert {o["order_id"] for o in snapshot["orders"]} == {str(a.pk), str(b.pk)}


def test_session_cookie_without_origin_is_not_a_login(alpha, viewer):
    # A program without Origin may use a bearer token only: cookies are dropped (no hijacked session).
    headers = session_headers(viewer, origin=None)

    error, code = run(lambda: refused(ws(headers=headers)))

    assert code == 4401 and error["error"] == "unauthenticated"


def test_session_from_another_site_is_rejected_at_the_handshake(alpha, viewer):
    headers = session_headers(viewer, origin="https://evil.example.com")

    async def scenario():
        return await ws(headers=headers).connect(timeout=TIMEOUT)

    connected, _code = run(scenario)

    assert connected is False


def test_person_without_permission_or_strategy_is_closed_4403(alpha):
    # Arrange: a personal token of someone who trades nothing and may view nothing
    token = make_token(UserFactory(username="nobody"))

    error, code = run(lambda: refused(ws(token=token)))

    assert code == 4403 and error["error"] == "forbidden"


def test_strategy_token_asking_for_another_strategy_is_closed_4403(alpha, beta):
    token = make_token(alpha.service_account)

    error, code = run(lambda: refused(ws("strategy=beta", token=token)))

    assert code == 4403 and "alpha" in error["detail"]


def test_trader_sees_only_the_strategies_they_trade_and_is_forbidden_others(alpha, beta):
    # Arrange
    trader = UserFactory(username="trader-t")
    alpha.traders.add(trader)
    own = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    other = OrderFactory(strategy=beta, status=S.SUBMITTED)
    token = make_token(trader)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        await apply(venue_event(K.ACCEPTED, other))
        await apply(venue_event(K.ACCEPTED, own))
        delta = await communicator.receive_json_from(timeout=TIMEOUT)
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return snapshot, delta, nothing, await refused(ws("strategy=beta", token=token))

    # Act
    snapshot, delta, nothing, (error, code) = run(scenario)

    # Assert: the stream of every order, filtered to the trader's strategies
    assert snapshot["stream"] == "orders" and [o["order_id"] for o in snapshot["orders"]] == [str(own.pk)]
    assert delta["order"]["order_id"] == str(own.pk) and delta["seq"] == snapshot["seq"] + 2 and nothing
    assert code == 4403 and error["error"] == "forbidden"


def test_viewer_naming_an_unknown_strategy_is_closed_4404(alpha, viewer):
    token = make_token(viewer)

    error, code = run(lambda: refused(ws("strategy=nope", token=token)))

    assert code == 4404 and error["error"] == "not_found"


@pytest.mark.parametrize("query, field", [("since=abc", "since"), ("since=-1", "since"), ("token=x", "token"),
                                          ("instrument=BTC", "instrument"), ("venue=binance", "venue"),
                                          ("since=1&since=2", "since")])
def test_malformed_query_is_closed_4400_naming_the_parameter(alpha, query, field):
    token = make_token(alpha.service_account)

    error, code = run(lambda: refused(ws(query, token=token)))

    assert code == 4400 and error["error"] == "invalid" and field in error["fields"]


# --- deltas ---------------------------------------------------------------------------------------

def test_filled_venue_event_arrives_as_delta_with_order_fill_and_position(alpha):
    # Arrange
    order = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        # Act
        await apply(venue_fill(order, "T1", "0.01", "40000.5"))
        delta = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return snapshot, delta

    snapshot, delta = run(scenario)

    # Assert
    assert [o["order_id"] for o in snapshot["orders"]] == [str(order.pk)]
    assert delta["type"] == "delta" and delta["stream"] == "strategy.alpha"
    assert delta["seq"] == snapshot["seq"] + 1
    assert delta["order"]["order_id"] == str(order.pk) and delta["order"]["status"] == "FILLED"
    assert delta["order"]["filled_quantity"] == "0.01" and delta["order"]["avg_fill_price"] == "40000.5"
    assert [e["type"] for e in delta["events"]] == ["FILLED"]
    assert delta["fills"] == [{"venue": "BINANCE-SPOT", "venue_trade_id": "T1", "price": "40000.5",
                               "quantity": "0.01", "fee": "0.4", "fee_currency": "USDT", "liquidity": "TAKER",
                               "ts_event": delta["fills"][0]["ts_event"]}]
    position = delta["position"]
    # The strategy's position in the listing the order was routed to, keyed by that listing (not ANY:)
    assert position["instrument_key"] == "BINANCE-SPOT:SPOT_PAIR:BTC-USDT" and position["quantity"] == "0.01"
    assert [(v["venue"], v["quantity"], v["strategies"]) for v in position["venues"]] == [
        ("BINANCE-SPOT", "0.01", ["alpha"])]


def test_strategy_token_receives_no_delta_of_another_strategy(alpha, beta):
    # Arrange
    mine = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    theirs = OrderFactory(strategy=beta, status=S.SUBMITTED)
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        # Act
        await apply(venue_event(K.ACCEPTED, theirs))
        nothing = await communicator.receive_nothing(timeout=0.5)
        await apply(venue_event(K.ACCEPTED, mine))
        delta = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return snapshot, nothing, delta

    snapshot, nothing, delta = run(scenario)

    # Assert: nothing of beta's; alpha's stream numbers stay consecutive
    assert nothing is True
    assert delta["order"]["order_id"] == str(mine.pk) and delta["seq"] == snapshot["seq"] + 1


def test_viewer_filters_by_instrument_and_pong_advances_past_hidden_changes(alpha, beta, viewer):
    # Arrange
    btc = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    eth = OrderFactory(strategy=beta, status=S.SUBMITTED, instrument_key=ETH_KEY, routed_instrument_key=ETH_KEY)
    token = make_token(viewer)

    async def scenario():
        communicator = ws(f"instrument={ETH_KEY}&venue=BINANCE-SPOT", token=token)
        snapshot = await opened(communicator)
        # Act
        await apply(venue_event(K.ACCEPTED, btc))
        await apply(venue_event(K.ACCEPTED, eth))
        delta = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"action": "ping"})
        pong = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return snapshot, delta, pong

    snapshot, delta, pong = run(scenario)

    # Assert
    assert [o["order_id"] for o in snapshot["orders"]] == [str(eth.pk)]
    assert delta["order"]["order_id"] == str(eth.pk) and delta["seq"] == snapshot["seq"] + 2
    assert pong == {"type": "pong", "stream": "orders", "seq": snapshot["seq"] + 2}


def test_submit_and_cancel_arrive_as_deltas_with_their_timeline(tradable, alpha, monkeypatch):
    # Arrange: no venue hand-off (its own publications are the trading worker's)
    monkeypatch.setattr("orders.services.dispatch.order_dispatch_submit", lambda **kwargs: True)
    monkeypatch.setattr("orders.services.dispatch.order_dispatch_cancel", lambda **kwargs: True)
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        # Act
        result = await db(order_submit, strategy=alpha, actor="svc-alpha", data=typed_request())
        routed = await communicator.receive_json_from(timeout=TIMEOUT)
        await db(order_cancel, order=result.order, actor="svc-alpha", reason="flat")
        canceled = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return snapshot, routed, canceled

    snapshot, routed, canceled = run(scenario)

    # Assert
    assert routed["seq"] == snapshot["seq"] + 1 and canceled["seq"] == snapshot["seq"] + 2
    assert routed["order"]["status"] == "ROUTED"
    assert [e["type"] for e in routed["events"]] == ["RECEIVED", "RISK_PASSED", "ROUTED"]
    assert canceled["order"]["status"] == "CANCELED" and [e["type"] for e in canceled["events"]] == ["CANCELED"]
    assert canceled["events"][0]["payload"]["reason"] == "flat"


def test_denied_submit_arrives_as_delta(tradable, alpha):
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="alpha", kind=RiskLimit.Kind.MAX_ORDER_QUANTITY,
                     value=Decimal("0.001"))
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        await opened(communicator)
        await db(order_submit, strategy=alpha, actor="svc-alpha", data=typed_request())
        delta = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return delta

    delta = run(scenario)

    assert delta["order"]["status"] == "DENIED" and [e["type"] for e in delta["events"]] == ["RECEIVED", "DENIED"]


# --- resume ---------------------------------------------------------------------------------------

def test_resume_since_sends_the_missed_deltas_in_order_then_resumed_then_live(alpha):
    # Arrange: a subscriber that saw the snapshot, then went away
    order = OrderFactory(strategy=alpha, status=S.SUBMITTED, quantity=Decimal("0.02"))
    token = make_token(alpha.service_account)

    async def scenario():
        first = ws(token=token)
        snapshot = await opened(first)
        await first.disconnect()
        await apply(venue_event(K.ACCEPTED, order))
        await apply(venue_fill(order, "T1", "0.01"))
        # Act
        second = ws(f"since={snapshot['seq']}&stream=strategy.alpha", token=token)
        missed = [await opened(second), await second.receive_json_from(timeout=TIMEOUT)]
        resumed = await second.receive_json_from(timeout=TIMEOUT)
        await apply(venue_fill(order, "T2", "0.01"))
        live = await second.receive_json_from(timeout=TIMEOUT)
        await second.disconnect()
        return snapshot["seq"], missed, resumed, live

    since, missed, resumed, live = run(scenario)

    # Assert
    assert [(m["type"], m["seq"]) for m in missed] == [("delta", since + 1), ("delta", since + 2)]
    assert [e["type"] for e in missed[0]["events"]] == ["ACCEPTED"] and missed[0]["fills"] == []
    assert [f["venue_trade_id"] for f in missed[1]["fills"]] == ["T1"]
    assert resumed == {"type": "resumed", "stream": "strategy.alpha", "since": since, "seq": since + 2}
    assert live["seq"] == since + 3 and live["order"]["status"] == "FILLED"


def test_resume_since_the_head_sends_nothing_missed(alpha):
    token = make_token(alpha.service_account)

    async def scenario():
        first = ws(token=token)
        snapshot = await opened(first)
        await first.disconnect()
        second = ws(f"since={snapshot['seq']}", token=token)
        resumed = await opened(second)
        await second.disconnect()
        return snapshot["seq"], resumed

    since, resumed = run(scenario)

    assert resumed == {"type": "resumed", "stream": "strategy.alpha", "since": since, "seq": since}


def test_resume_older_than_the_log_is_told_to_take_a_snapshot(alpha, settings):
    # Arrange: a log of two entries per stream, and three changes while away
    settings.ODUM = {**settings.ODUM, "ORDER_STREAM_MAXLEN": 2}
    order = OrderFactory(strategy=alpha, status=S.SUBMITTED, quantity=Decimal("0.03"))
    token = make_token(alpha.service_account)

    async def scenario():
        first = ws(token=token)
        snapshot = await opened(first)
        await first.disconnect()
        await apply(venue_event(K.ACCEPTED, order))
        await apply(venue_fill(order, "T1", "0.01"))
        await apply(venue_fill(order, "T2", "0.01"))
        # Act
        second = ws(f"since={snapshot['seq']}", token=token)
        told = await opened(second)
        fresh = await second.receive_json_from(timeout=TIMEOUT)
        await second.disconnect()
        return snapshot["seq"], told, fresh

    since, told, fresh = run(scenario)

    # Assert
    assert told["type"] == "snapshot_required" and told["since"] == since and told["stream"] == "strategy.alpha"
    assert fresh["type"] == "snapshot" and fresh["seq"] == since + 3
    assert fresh["orders"][0]["filled_quantity"] == "0.02"


@pytest.mark.parametrize("query", ["since={ahead}", "since={since}&stream=orders"])
def test_resume_from_the_future_or_another_stream_is_told_to_take_a_snapshot(alpha, query):
    token = make_token(alpha.service_account)

    async def scenario():
        first = ws(token=token)
        snapshot = await opened(first)
        await first.disconnect()
        second = ws(query.format(ahead=snapshot["seq"] + 100, since=snapshot["seq"]), token=token)
        told = await opened(second)
        fresh = await second.receive_json_from(timeout=TIMEOUT)
        await second.disconnect()
        return told, fresh

    told, fresh = run(scenario)

    assert told["type"] == "snapshot_required" and fresh["type"] == "snapshot"


def test_lost_channel_message_is_filled_from_the_log(alpha):
    # Arrange: a change numbered and logged whose channel-layer message never arrives (a full buffer)
    order = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        accepted = await apply(venue_event(K.ACCEPTED, order))
        await db(stream_log().append, streams=order_streams("alpha"), order_id=str(order.pk), strategy_id="alpha",
                 event_ids=[], fill_ids=[], maxlen=100)  # numbered and logged, never sent
        # Act: the next change's message shows the hole
        await apply(venue_fill(order, "T1", "0.01"))
        deltas = [await communicator.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
        await communicator.disconnect()
        return snapshot["seq"], accepted, deltas

    since, accepted, deltas = run(scenario)

    # Assert: every number once, in order — the lost one read from the log
    assert accepted.applied
    assert [d["seq"] for d in deltas] == [since + 1, since + 2, since + 3]
    assert [[f["venue_trade_id"] for f in d["fills"]] for d in deltas] == [[], [], ["T1"]]


def test_one_publication_of_several_orders_reaches_both_groups_each_in_number_order(alpha):
    # Arrange: a member in each group an order's change goes to (``orders``, ``strategy.alpha``)
    orders = [OrderFactory(strategy=alpha, status=S.SUBMITTED) for _ in range(3)]
    layer = get_channel_layer()

    async def scenario():
        members = {group: await layer.new_channel() for group in stream.order_streams("alpha")}
        for group, channel in members.items():
            await layer.group_add(group, channel)
        # Act: one publication of the three orders (the groups are sent to at once)
        await db(stream.publish_orders_updated, {order.pk: "alpha" for order in orders})
        received = {group: [await asyncio.wait_for(layer.receive(channel), TIMEOUT) for _ in orders]
                    for group, channel in members.items()}
        for group, channel in members.items():
            await layer.group_discard(group, channel)
        return received

    received = run(scenario)

    # Assert: each group got every order once, in publication order, with consecutive numbers
    assert sorted(received) == sorted(stream.order_streams("alpha"))
    for group, messages in received.items():
        assert [m["order_id"] for m in messages] == [str(order.pk) for order in orders]
        assert {m["stream"] for m in messages} == {group}
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(seqs[0], seqs[0] + 3))


def test_failed_publication_restarts_the_stream_so_a_resume_takes_a_snapshot(alpha, monkeypatch):
    # Arrange: the log refuses one append (Redis down) while the subscriber is away
    order = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    token = make_token(alpha.service_account)
    log = stream_log()
    real_append = log.append
    failures = iter([RuntimeError("redis down")])

    def flaky_append(**kwargs):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_append(**kwargs)

    async def scenario():
        first = ws(token=token)
        snapshot = await opened(first)
        await first.disconnect()
        monkeypatch.setattr(log, "append", flaky_append)
        await apply(venue_event(K.ACCEPTED, order))          # lost: never numbered
        await apply(venue_fill(order, "T1", "0.01"))         # numbered after the restart
        # Act
        second = ws(f"since={snapshot['seq']}", token=token)
        told = await opened(second)
        fresh = await second.receive_json_from(timeout=TIMEOUT)
        await second.disconnect()
        return told, fresh

    told, fresh = run(scenario)

    # Assert: not the one delta after the hole, but a snapshot
    assert told["type"] == "snapshot_required" and fresh["type"] == "snapshot"


# --- client messages ------------------------------------------------------------------------------

def test_malformed_messages_get_an_error_and_the_connection_stays_up(alpha, beta):
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        snapshot = await opened(communicator)
        replies = []
        for text in ["not json", "[1, 2]", '{"action": "dance"}', '{"action": "ping", "x": 1}',
                     '{"action": "subscribe", "since": -1}', '{"action": "subscribe", "strategy": "beta"}',
                     "x" * 5000]:
            await communicator.send_to(text_data=text)
            replies.append(await communicator.receive_json_from(timeout=TIMEOUT))
        await communicator.send_to(bytes_data=b"\x00")
        replies.append(await communicator.receive_json_from(timeout=TIMEOUT))
        await communicator.send_json_to({"action": "ping"})
        pong = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return snapshot, replies, pong

    snapshot, replies, pong = run(scenario)

    assert [r["type"] for r in replies] == ["error"] * 8
    assert [r["error"] for r in replies] == ["invalid"] * 5 + ["forbidden"] + ["invalid"] * 2
    assert "action" in replies[2]["fields"] and "since" in replies[4]["fields"]
    assert pong == {"type": "pong", "stream": "strategy.alpha", "seq": snapshot["seq"]}  # still the old subscription


def test_subscribe_message_switches_stream_and_sends_a_snapshot(alpha, beta, viewer):
    a = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    b = OrderFactory(strategy=beta, status=S.SUBMITTED)
    token = make_token(viewer)

    async def scenario():
        communicator = ws(token=token)
        everything = await opened(communicator)
        await communicator.send_json_to({"action": "subscribe", "strategy": "beta"})
        only_beta = await communicator.receive_json_from(timeout=TIMEOUT)
        await apply(venue_event(K.ACCEPTED, a))
        await apply(venue_event(K.ACCEPTED, b))
        delta = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"action": "snapshot"})
        again = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return everything, only_beta, delta, again

    everything, only_beta, delta, again = run(scenario)

    assert everything["stream"] == "orders" and len(everything["orders"]) == 2
    assert only_beta["type"] == "snapshot" and only_beta["stream"] == "strategy.beta"
    assert [o["order_id"] for o in only_beta["orders"]] == [str(b.pk)]
    assert delta["stream"] == "strategy.beta" and delta["order"]["order_id"] == str(b.pk)
    assert again["type"] == "snapshot" and again["seq"] == delta["seq"]


def test_cached_frame_older_than_what_a_subscriber_sent_is_rendered_afresh(alpha):
    # Arrange: a frame of an ACCEPTED order in the cache; the order has filled since
    order = OrderFactory(strategy=alpha, status=S.ACCEPTED)
    entry = stream.StreamEntry(stream="strategy.alpha", seq=1, order_id=str(order.pk), strategy_id="alpha")

    async def scenario():
        cached = await consumers.frames.get(entry, horizon=0)
        await db(lambda: Order.objects.filter(pk=order.pk).update(status=S.FILLED))
        # Act: a subscriber that sent nothing newer takes the cached frame; one whose last sent
        # reads finished after the cached frame's began must not go back to it
        same = await consumers.frames.get(entry, horizon=cached.started)
        fresh = await consumers.frames.get(entry, horizon=cached.finished)
        return cached, same, fresh

    cached, same, fresh = run(scenario)

    # Assert
    assert same is cached and '"status":"ACCEPTED"' in cached.text
    assert fresh.started > cached.finished and '"status":"FILLED"' in fresh.text


# --- the stream log ---------------------------------------------------------------------------------

@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def any_log(request):
    """Each stream-log backend: memory, and Redis at REDIS_URL (this run's database and prefix)."""
    if request.param == "memory":
        return MemoryStreamLog()
    return RedisStreamLog(settings.REDIS_URL, f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:t")


def test_stream_log_numbers_consecutively_and_claims_each_id_once(any_log, db):
    # Arrange
    head = any_log.head("s")

    # Act
    first = any_log.append(streams=["s", "t"], order_id="o1", strategy_id="x", event_ids=[1, 2], fill_ids=[7],
                           maxlen=10)
    second = any_log.append(streams=["s"], order_id="o1", strategy_id="x", event_ids=[1, 2, 3], fill_ids=[7, 8],
                            maxlen=10)

    # Assert
    assert [e.seq for e in first][0] == head + 1 and second[0].seq == head + 2
    assert (first[0].event_ids, first[0].fill_ids) == ((1, 2), (7,))
    assert (second[0].event_ids, second[0].fill_ids) == ((3,), (8,))
    assert any_log.read_after("s", head) == [first[0], second[0]]
    assert any_log.head("s") == head + 2


def test_stream_log_restart_leaves_a_hole_that_readers_see(any_log, db, monkeypatch):
    # Arrange
    monkeypatch.setattr(stream, "_log", any_log)
    head = any_log.head("s")
    any_log.append(streams=["s"], order_id="o1", strategy_id="x", event_ids=[], fill_ids=[], maxlen=10)

    # Act
    any_log.restart(["s"])
    after = any_log.append(streams=["s"], order_id="o1", strategy_id="x", event_ids=[], fill_ids=[], maxlen=10)

    # Assert
    assert after[0].seq >= head + 3
    assert order_stream_after(stream="s", after=head) is None
    assert order_stream_after(stream="s", after=after[0].seq) == []


class _StartsOverWhileRead:
    """A stream log whose counter starts over, and numbers a change, between a reader's head and its read."""

    def __init__(self, log):
        self._log = log

    def head(self, stream):
        return self._log.head(stream)

    def read_after(self, stream, after):
        self._log.restart([stream])
        self._log.append(streams=[stream], order_id="o2", strategy_id="x", event_ids=[], fill_ids=[], maxlen=10)
        return self._log.read_after(stream, after)


def test_stream_after_the_head_when_the_counter_starts_over_meanwhile_is_none(any_log, db, monkeypatch):
    # Arrange: a reader at the head; a publication fails elsewhere, so the counter starts over (a hole)
    monkeypatch.setattr(stream, "_log", _StartsOverWhileRead(any_log))
    any_log.append(streams=["s"], order_id="o1", strategy_id="x", event_ids=[], fill_ids=[], maxlen=10)
    head = any_log.head("s")

    # Act
    entries = order_stream_after(stream="s", after=head)

    # Assert: the hole is seen (a snapshot), not skipped
    assert entries is None


def test_stream_log_trims_to_maxlen_and_readers_see_the_gap(any_log, db, monkeypatch):
    monkeypatch.setattr(stream, "_log", any_log)
    head = any_log.head("s")
    for _ in range(4):
        any_log.append(streams=["s"], order_id="o1", strategy_id="x", event_ids=[], fill_ids=[], maxlen=2)

    assert [e.seq for e in any_log.read_after("s", head)] == [head + 3, head + 4]
    assert order_stream_after(stream="s", after=head + 1) is None
    assert [e.seq for e in order_stream_after(stream="s", after=head + 2)] == [head + 3, head + 4]


@pytest.mark.redis
def test_redis_log_numbers_are_shared_by_processes_and_survive_a_lost_counter(redis_client, db):
    # Arrange: two processes' clients of the same Redis log
    prefix = f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:t"
    one = RedisStreamLog(settings.REDIS_URL, prefix)
    two = RedisStreamLog(settings.REDIS_URL, prefix)
    head = one.head("s")

    # Act: interleaved appends, then Redis loses the counter (eviction, restore from an old dump)
    seqs = [log.append(streams=["s"], order_id="o", strategy_id="x", event_ids=[], fill_ids=[], maxlen=100)[0].seq
            for log in (one, two, one, two)]
    redis_client.delete(one.keys("s")[0])
    after_loss = two.append(streams=["s"], order_id="o", strategy_id="x", event_ids=[], fill_ids=[], maxlen=100)

    # Assert
    assert seqs == [head + 1, head + 2, head + 3, head + 4]
    assert after_loss[0].seq >= head + 6  # a hole after head + 4
    assert len(str(after_loss[0].seq)) >= 16  # microseconds: printed exactly, not in exponent form


def test_publication_carries_each_orders_unpublished_events_and_fills_in_id_order(alpha):
    # Arrange: two orders with events and a fill written without a publication of their own.
    first, second = OrderFactory(strategy=alpha), OrderFactory(strategy=alpha)
    now = timezone.now()
    e1 = OrderEvent.objects.create(order=first, type="ACCEPTED", ts=now).pk
    e2 = OrderEvent.objects.create(order=second, type="ACCEPTED", ts=now).pk
    e3 = OrderEvent.objects.create(order=first, type="PARTIALLY_FILLED", ts=now).pk
    f1 = FillFactory(order=first).pk
    head = stream_log().head("strategy.alpha")

    # Act: one publication of both, then another event of the first and its own publication.
    publish_orders_updated({first.pk: "alpha", second.pk: "alpha"})
    e4 = OrderEvent.objects.create(order=first, type="FILLED", ts=now).pk
    publish_orders_updated({first.pk: "alpha"})
    entries = order_stream_after(stream="strategy.alpha", after=head)

    # Assert: each order's own rows, in id order; the second publication only what is new.
    carried = [(e.order_id, e.event_ids, e.fill_ids) for e in entries]
    assert carried == [(str(first.pk), (e1, e3), (f1,)), (str(second.pk), (e2,), ()), (str(first.pk), (e4,), ())]


# --- commit order is not id order --------------------------------------------------------------------

@pytest.mark.postgres
def test_event_committed_after_a_larger_id_is_not_skipped_by_a_resume(alpha):
    # Arrange: transaction A inserts an event (smaller id) and commits only after transaction B
    # inserted, committed and published one with a larger id.
    slow, fast = OrderFactory(strategy=alpha), OrderFactory(strategy=alpha)
    inserted, release = threading.Event(), threading.Event()
    head = stream_log().head("strategy.alpha")
    ids = {}

    def transaction_a():
        from django.db import connection

        try:
            with transaction.atomic():
                ids["a"] = OrderEvent.objects.create(order=slow, type="ACCEPTED", ts=timezone.now()).pk
                transaction.on_commit(lambda: publish_orders_updated({slow.pk: "alpha"}))
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=transaction_a)
    thread.start()
    assert inserted.wait(timeout=30)
    with transaction.atomic():
        ids["b"] = OrderEvent.objects.create(order=fast, type="ACCEPTED", ts=timezone.now()).pk
        transaction.on_commit(lambda: publish_orders_updated({fast.pk: "alpha"}))
    seen = order_stream_after(stream="strategy.alpha", after=head)  # a reader now: B only

    # Act: A commits
    release.set()
    thread.join(timeout=30)
    missed = order_stream_after(stream="strategy.alpha", after=seen[-1].seq)

    # Assert: A's smaller id comes after B's larger one in the stream, and a resume gets it
    assert ids["a"] < ids["b"]
    assert [e.event_ids for e in seen] == [(ids["b"],)]
    assert [e.event_ids for e in missed] == [(ids["a"],)] and missed[0].seq == seen[-1].seq + 1


# --- fan-out: one group member per process (the hub) ---------------------------------------------------

async def group_members(name: str) -> int:
    """The number of this process's channels in channel-layer group ``name`` (in-memory layer, or
    channels_redis' pub/sub layer: its layer of this event loop holds the process's members)."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return len(layer.groups.get(name, {}))
    loop_layer = layer._get_layer()
    return len(loop_layer.groups.get(loop_layer._get_group_channel_name(name), ()))


def test_subscribers_of_one_process_share_one_group_member_and_one_render(alpha, viewer, monkeypatch):
    # Arrange: three subscribers of the stream "orders" in this process; renders counted
    order = OrderFactory(strategy=alpha, status=S.SUBMITTED)
    token = make_token(viewer)
    renders = []
    real_render = consumers._render_delta
    monkeypatch.setattr(consumers, "_render_delta", lambda entry: renders.append(entry.seq) or real_render(entry))

    async def scenario():
        communicators = [ws(token=token) for _ in range(3)]
        snapshots = [await opened(c) for c in communicators]
        members = await group_members("orders")
        # Act
        await apply(venue_fill(order, "T1", "0.01"))
        deltas = [await c.receive_json_from(timeout=TIMEOUT) for c in communicators]
        for c in communicators:
            await c.disconnect()
        return snapshots, members, deltas, await group_members("orders")

    snapshots, members, deltas, members_after = run(scenario)

    # Assert: the process's hub is the group's one member (and leaves with the last subscriber);
    # the delta is rendered once and reaches every subscriber
    assert members == 1 and members_after == 0
    assert [d["seq"] for d in deltas] == [snapshots[0]["seq"] + 1] * 3
    assert [[f["venue_trade_id"] for f in d["fills"]] for d in deltas] == [["T1"]] * 3
    assert renders == [deltas[0]["seq"]]


def test_hub_gives_a_subscriber_the_change_only_when_it_can_take_it_as_it_stands():
    # Arrange: a subscriber of "orders" filtered to BINANCE-SPOT that has handled number 5 and sent
    # a frame whose reads finished at clock 11
    def entry(seq):
        return stream.StreamEntry(stream="orders", seq=seq, order_id=str(uuid.uuid4()), strategy_id="alpha")

    frame = consumers._Frame(text="F", venue="BINANCE-SPOT", instrument_key=ETH_KEY, routed_instrument_key=ETH_KEY,
                             started=12, finished=13)

    def subscriber(*, busy=0, horizon=11):
        consumer = consumers.OrderStreamConsumer()
        consumer.subscription = stream.Subscription(stream="orders", venue="BINANCE-SPOT")
        consumer.last_seq, consumer.horizon, consumer._busy = 5, horizon, busy
        return consumer

    # Act / Assert: the next number, idle, a frame newer than what it sent: the hub sends it
    taker = subscriber()
    assert taker._take(entry(6), frame) == "F" and (taker.last_seq, taker.horizon) == (6, 13)
    # a number already handled: dropped
    assert subscriber()._take(entry(5), frame) is None
    # a hole, a busy subscriber, a frame older than what it sent, no frame: its own turn
    own = consumers._OWN_TURN
    assert subscriber()._take(entry(7), frame) is own
    assert subscriber(busy=1)._take(entry(6), frame) is own
    assert subscriber(horizon=14)._take(entry(6), frame) is own
    assert subscriber()._take(entry(6), consumers._NOT_RENDERED) is own
    # filtered out (another venue), or the order is gone: nothing to send, the number is taken
    for other in (dataclasses.replace(frame, venue="OKX"), None):
        skipper = subscriber()
        assert skipper._take(entry(6), other) is None and skipper.last_seq == 6


def test_render_keeps_a_usable_connection_and_drops_a_broken_one(monkeypatch):
    # Arrange: with DB_CONN_MAX_AGE=0 (daphne) every connection is "obsolete" as soon as it opens
    from django.db import connection

    def current():
        connection.ensure_connection()
        return connection.connection

    def expire():
        connection.close_at = 0

    def break_it():
        connection.errors_occurred = True
        monkeypatch.setattr(connection, "is_usable", lambda: False)

    async def scenario():
        render = consumers._RenderSyncToAsync
        first = await render(current)()
        await sync_to_async(expire)()  # on the database thread, without closing anything itself
        kept = await render(current)()
        await sync_to_async(break_it)()
        fresh = await render(current)()
        return first, kept, fresh

    # Act
    first, kept, fresh = run(scenario)

    # Assert
    assert kept is first and fresh is not first


@pytest.mark.redis
def test_channel_layer_receive_outlives_the_socket_timeout():
    # A receive idle for longer than redis-py's default socket timeout (5 s) must still get the next
    # message: an idle wait that timed out took its consumer down (close 1011) every 5 s.
    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        done, _ = await asyncio.wait({receiving}, timeout=6.5)
        await layer.send(channel, {"type": "test.ping"})
        return done, await asyncio.wait_for(receiving, timeout=TIMEOUT)

    done, message = run(scenario)

    assert not done and message == {"type": "test.ping"}


# --- access withdrawn while connected ---------------------------------------------------------------

async def closed_after(communicator, act) -> tuple[dict, int]:
    """Run ``act()`` on the database thread with ``communicator`` open (its snapshot read); return the
    (error message, close code) the connection then ends with."""
    await db(act)
    error = await communicator.receive_json_from(timeout=TIMEOUT)
    closing = await communicator.receive_output(timeout=TIMEOUT)
    assert closing["type"] == "websocket.close"
    return error, closing["code"]


def test_revoked_token_ends_its_open_connection_4401(alpha):
    # Arrange: a strategy service follows its orders with a token, then the token is revoked (admin)
    from knox.models import AuthToken

    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        await opened(communicator)
        # Act
        return await closed_after(communicator, lambda: AuthToken.objects.filter(user=alpha.service_account).delete())

    error, code = run(scenario)

    # Assert: told why, and closed: no delta of alpha's orders reaches a revoked token
    assert code == 4401 and error["error"] == "unauthenticated" and "token" in error["detail"]


def test_person_removed_from_the_viewer_group_while_connected_is_closed_4403(alpha, beta):
    # Arrange: a viewer (orders.view_order through the group: every strategy) follows every order
    from tests.orders.web_fixtures import person_in

    person = person_in("viewer")
    headers = session_headers(person)

    async def scenario():
        communicator = ws(headers=headers)
        snapshot = await opened(communicator)
        # Act: removed from the group (they trade no strategy: nothing is theirs to see any more)
        return snapshot, await closed_after(communicator, lambda: person.groups.clear())

    snapshot, (error, code) = run(scenario)

    # Assert
    assert snapshot["stream"] == "orders"
    assert code == 4403 and error["error"] == "forbidden"


def test_trader_taken_off_a_strategy_while_subscribed_to_it_is_closed_4403(alpha):
    # Arrange: a trader without orders.view_order follows alpha's stream
    trader = UserFactory(username="trader-off")
    alpha.traders.add(trader)
    token = make_token(trader)

    async def scenario():
        communicator = ws("strategy=alpha", token=token)
        await opened(communicator)
        # Act
        return await closed_after(communicator, lambda: alpha.traders.remove(trader))

    error, code = run(scenario)

    # Assert
    assert code == 4403 and "alpha" in error["detail"]


def test_token_expiring_while_connected_ends_the_connection_at_the_next_renewal_4401(alpha, settings):
    # Arrange: a token with an expiry; nothing is deleted or saved when it passes (no access.changed), so
    # only the connection's periodic renewal can notice. Renewals every 50 ms instead of every hour.
    from knox.models import AuthToken

    settings.ODUM = {**settings.ODUM, "WS_RENEW_SECS": 0.05}
    token = make_token(alpha.service_account)

    async def scenario():
        communicator = ws(token=token)
        await opened(communicator)
        # Act: the expiry passes (an update: no signal)
        await db(lambda: AuthToken.objects.filter(user=alpha.service_account).update(
            expiry=timezone.now() - timedelta(seconds=1)))
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        closing = await communicator.receive_output(timeout=TIMEOUT)
        return error, closing

    error, closing = run(scenario)

    # Assert
    assert closing == {"type": "websocket.close", "code": 4401} and error["error"] == "unauthenticated"


def test_delta_arriving_while_the_periodic_check_narrows_the_scope_is_not_sent_for_the_old_scope(alpha, beta,
                                                                                                   viewer, settings):
    # Arrange: a person holding orders.view_order who also trades alpha follows every order. The permission is then
    # taken away unannounced (rows deleted from the link table: no signal, as a lost push), so only the periodic
    # check can narrow the connection to alpha. Renewals every 50 ms instead of every hour.
    settings.ODUM = {**settings.ODUM, "WS_RENEW_SECS": 0.05}
    alpha.traders.add(viewer)
    hidden = OrderFactory(strategy=beta, operation_id="beta-now-hidden")
    headers = session_headers(viewer)
    gate = threading.Event()

    async def scenario():
        communicator = ws(headers=headers)
        await opened(communicator)
        await db(lambda: viewer.user_permissions.through.objects.filter(user_id=viewer.pk).delete())
        # Act: the database thread is held, so the periodic check that falls due meanwhile waits for its reads; a
        # change of beta's is published while it waits; then the database thread goes on, and alpha changes
        held = asyncio.ensure_future(db(gate.wait))
        await asyncio.sleep(0.5)  # sequencing only: ten renewal intervals, for the check to fall due
        await sync_to_async(publish_orders_updated, thread_sensitive=False)(
            {hidden.pk: "beta"}, new_rows={hidden.pk: ((), ())})
        await asyncio.sleep(0.1)  # sequencing only: the change reaches the connection while the check waits
        gate.set()
        await held
        await db(order_submit, strategy=alpha, actor="x", data=typed_request(operation_id="alpha-visible"))
        first = await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return first

    first = run(scenario)

    # Assert: the first delta after the narrowing is alpha's; beta's change was not sent for the old scope
    assert first["type"] == "delta" and first["order"]["strategy_id"] == "alpha", first
