"""odum_live.sql: querysets compiled once, statements sent now and read later, psycopg pipelines."""

import tempfile
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.fields.json import KT
from django.test.utils import CaptureQueriesContext

from odum_live.sql import (
    PSYCOPG_CACHED_PARAMS,
    CompiledQuery,
    in_pipeline,
    instances_from_rows,
    next_id,
    pipeline,
    pipelined_transaction,
    send_insert,
    send_update,
)
from orders.models import Fill, Order, OrderEvent
from tests.orders.factories import FillFactory, OrderFactory

pytestmark = pytest.mark.django_db

BY_CLIENT_ORDER_ID = CompiledQuery(
    lambda cid: Order.objects.defer("risk_result").annotate(recorded=KT("risk_result__recorded"))
    .filter(client_order_id=cid),
    markers=("<cid>",),
)


def test_compiled_query_returns_the_rows_the_queryset_would_for_each_argument():
    # Arrange
    first = OrderFactory(risk_result={"recorded": True}, quantity=Decimal("0.25"))
    second = OrderFactory(risk_result={})

    # Act
    found_first = BY_CLIENT_ORDER_ID.one(first.client_order_id)
    found_second = BY_CLIENT_ORDER_ID.one(second.client_order_id)

    # Assert: the same instances, converters applied, deferred fields and annotations kept.
    assert found_first.pk == first.pk and found_second.pk == second.pk
    assert found_first.quantity == Decimal("0.25") and isinstance(found_first.quantity, Decimal)
    assert "risk_result" in found_first.get_deferred_fields()
    assert (found_first.recorded, found_second.recorded) == ("true", None)
    assert BY_CLIENT_ORDER_ID.one("no-such-order") is None


def test_compiled_query_select_for_update_compiles_inside_a_transaction():
    order = OrderFactory()
    locked = CompiledQuery(lambda pk: Order.objects.select_for_update().filter(pk=pk), markers=(order.pk,))

    with transaction.atomic():
        assert locked.one(order.pk).pk == order.pk


def test_compiled_query_select_related_populates_the_related_instances_without_queries(
        django_assert_num_queries):
    first, second = OrderFactory(), OrderFactory(strategy__name="Other")
    query = CompiledQuery(lambda pk: Order.objects.select_related("strategy__service_account").filter(pk=pk),
                          markers=(first.pk,))
    query.one(first.pk)  # compiles

    with django_assert_num_queries(1):
        found = query.one(second.pk)
        strategy = found.strategy
        account = strategy.service_account

    assert found.pk == second.pk and strategy.pk == second.strategy_id and strategy.name == "Other"
    assert account == second.strategy.service_account


def test_compiled_query_marker_not_among_the_parameters_is_refused():
    # The builder ignores its argument: its marker is not a parameter, so it could never be replaced.
    query = CompiledQuery(lambda cid: Order.objects.filter(status="ROUTED"), markers=("<cid>",))

    with pytest.raises(ValueError, match="appears 0 times"):
        query.one("x")


def test_compiled_query_one_refuses_several_rows():
    OrderFactory(status="ROUTED")
    OrderFactory(status="ROUTED")
    query = CompiledQuery(lambda status: Order.objects.filter(status=status), markers=("<status>",))

    with pytest.raises(ValueError, match="2 rows"):
        query.one("ROUTED")


# --- statements sent now, read later; pipelines ----------------------------------------------------

def test_send_update_writes_the_fields_and_stamps_auto_now():
    # Arrange
    order = OrderFactory(status="SUBMITTED")
    stored_updated_at = Order.objects.get(pk=order.pk).updated_at
    order.status, order.filled_quantity, order.side = "FILLED", Decimal("0.01"), "SELL"

    # Act: status and filled quantity only (the side is not among the fields)
    with transaction.atomic():
        send_update(order, ["status", "filled_quantity", "updated_at"])

    # Assert
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.filled_quantity, stored.side) == ("FILLED", Decimal("0.01"), "BUY")
    assert stored.updated_at == order.updated_at and stored.updated_at > stored_updated_at


def test_send_insert_reads_database_ids_only_when_asked():
    # Arrange
    order = OrderFactory()
    read, unread = (OrderEvent(order=order, type="IGNORED", status_before="ROUTED", status_after="ROUTED",
                               actor="test", ts=order.created_at, payload={"n": n}) for n in (1, 2))

    # Act
    read_ids = send_insert([read])
    nothing = send_insert([unread], read_ids=False)
    read_ids()

    # Assert
    assert nothing is None and unread.pk is None
    assert OrderEvent.objects.get(pk=read.pk).payload == {"n": 1}
    assert OrderEvent.objects.filter(order=order, payload={"n": 2}).count() == 1


def test_instances_from_rows_takes_values_in_the_given_names_order_with_converters():
    # Arrange: names in another order than the model's fields, a JSON field among them
    order = OrderFactory(exec_algorithm_params={"display_qty": "0.1"}, quantity=Decimal("0.25"))
    names = ("exec_algorithm_params", "quantity", "id")
    with connection.cursor() as cursor:
        cursor.execute("SELECT exec_algorithm_params, quantity, id FROM orders_order WHERE client_order_id = %s",
                       [order.client_order_id])
        rows = cursor.fetchall()

    # Act
    [found] = instances_from_rows(Order, names, rows)

    # Assert
    assert found.pk == order.pk and found.quantity == Decimal("0.25")
    assert found.exec_algorithm_params == {"display_qty": "0.1"}
    assert "status" in found.get_deferred_fields()


@pytest.mark.postgres
def test_pipeline_statements_run_in_order_and_a_read_sees_the_writes_sent_before_it():
    # Arrange
    order = OrderFactory(status="SUBMITTED")
    locked = CompiledQuery(lambda pk: Order.objects.select_for_update().filter(pk=pk), markers=(order.pk,))

    # Act: a write sent, then a read of the same row in the same pipeline
    with transaction.atomic(), pipeline() as pipelined:
        in_it = in_pipeline()
        order.status = "ACCEPTED"
        send_update(order, ["status"])
        seen = locked.one(order.pk)
        fill_id = next_id(Fill).fetchall()[0][0]
    after = in_pipeline()

    # Assert
    assert pipelined and in_it and not after
    assert seen.status == "ACCEPTED" and Order.objects.get(pk=order.pk).status == "ACCEPTED"
    assert isinstance(fill_id, int) and fill_id > 0


def _order_with_a_taken_trade_id() -> tuple[Order, Fill]:
    # A SUBMITTED order with a stored fill T1, and an unsaved second fill of the same (venue, listing, trade id, side).
    order = OrderFactory(status="SUBMITTED")
    FillFactory(order=order, venue="BINANCE-SPOT", venue_trade_id="T1")
    duplicate = Fill(order=order, venue="BINANCE-SPOT", instrument_key=order.routed_instrument_key, venue_trade_id="T1",
                     side="BUY", price=Decimal("1"), quantity=Decimal("0.001"), fee=Decimal("0"), fee_currency="USDT",
                     liquidity="TAKER", ts_event=order.created_at)
    return order, duplicate


@pytest.mark.postgres
def test_pipeline_error_of_a_sent_statement_surfaces_at_its_end_and_nothing_is_kept():
    # Arrange: a fill whose (venue, listing, trade id, side) is taken, sent after a status change of the order
    order, duplicate = _order_with_a_taken_trade_id()

    # Act
    with pytest.raises(IntegrityError), transaction.atomic(), pipeline():
        order.status = "ACCEPTED"
        send_update(order, ["status"])
        send_insert([duplicate], read_ids=False)

    # Assert: the transaction rolled back whole
    assert Order.objects.get(pk=order.pk).status == "SUBMITTED"
    assert Fill.objects.filter(order=order).count() == 1


@pytest.mark.postgres
def test_kept_cursors_each_read_returns_its_own_rows_between_pending_writes():
    # Cursors are kept between statements (PostgreSQL): a cursor read once and taken again, with
    # writes still pending in the pipeline before and after it, must return its new query's rows.
    first, second = OrderFactory(status="SUBMITTED"), OrderFactory(status="ACCEPTED")
    by_pk = CompiledQuery(lambda pk: Order.objects.filter(pk=pk), markers=(first.pk,))

    with transaction.atomic(), pipeline():
        seen_first = by_pk.one(first.pk)  # read: its cursor goes back to the connection's
        first.status = "ACCEPTED"
        send_update(first, ["status"])  # pending
        pending_read = by_pk.send(second.pk)  # takes the cursor read above
        second.status = "CANCELED"
        send_update(second, ["status"])  # pending after it
        other = by_pk.send(first.pk)  # a second cursor: the first is still unread
        seen_second, seen_first_again = pending_read.one(), other.one()

    assert (seen_first.pk, seen_first.status) == (first.pk, "SUBMITTED")
    assert (seen_second.pk, seen_second.status) == (second.pk, "ACCEPTED")  # read before its update
    assert (seen_first_again.pk, seen_first_again.status) == (first.pk, "ACCEPTED")
    assert Order.objects.get(pk=second.pk).status == "CANCELED"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the row must outlive the connection
def test_kept_cursors_follow_a_new_connection():
    # Arrange: a cursor kept on the current connection
    order = OrderFactory()
    by_pk = CompiledQuery(lambda pk: Order.objects.filter(pk=pk), markers=(order.pk,))
    assert by_pk.one(order.pk).pk == order.pk

    # Act: the connection is replaced (as after a dropped connection), then read again
    connection.close()
    connection.connect()
    again = by_pk.one(order.pk)

    # Assert
    assert again.pk == order.pk


@contextmanager
def _frontend_messages():
    """Collect the protocol messages this connection sends (libpq's trace): each message's name, a
    Parse as the first word of its statement instead, e.g. ``["BEGIN", "Bind", "Describe", "Execute", "Sync"]``."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    sent: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace.read().splitlines():
                # timestamp, F (frontend) or B (backend), length, message name, its fields
                fields = line.split("\t")
                if len(fields) > 3 and fields[1] == "F":
                    # A Parse's fields: "<statement name>" "<query>" …: its query's first word.
                    sent.append(fields[4].split('"')[3].split()[0] if fields[3] == "Parse" else fields[3])


def _round_trips(messages: list[str]) -> int:
    # A Sync, or a Flush after a statement, sends what is queued and waits for its results: one
    # round trip each (psycopg may send a lone Flush after the pipeline's last Sync; nothing answers it).
    return sum(m == "Sync" or (m == "Flush" and before == "Execute") for before, m in zip(["", *messages], messages))


def _accept_and_ask_for_after_commit(order: Order, after_commit, ran: list) -> None:
    # The order's change sent in the pipeline, and work for after the commit that records it ran.
    order.status = "ACCEPTED"
    send_update(order, ["status"])
    after_commit(lambda: ran.append("after"))


def _assert_nothing_committed(order: Order, ran: list) -> None:
    assert ran == []
    assert Order.objects.get(pk=order.pk).status == "SUBMITTED"
    assert connection.get_autocommit() and not connection.in_atomic_block and not in_pipeline()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_transaction_commits_with_its_writes_then_runs_its_callbacks():
    # Arrange
    order = OrderFactory(status="SUBMITTED")
    locked = CompiledQuery(lambda pk: Order.objects.select_for_update().filter(pk=pk), markers=(order.pk,))
    ran: list[tuple] = []

    # Act: a locked read, a write, work for after the commit registered both ways
    with _frontend_messages() as sent:
        with pipelined_transaction() as after_commit:
            seen = locked.one(order.pk)
            seen.status = "ACCEPTED"
            send_update(seen, ["status"])
            transaction.on_commit(lambda: ran.append(("on_commit", connection.get_autocommit())))
            after_commit(lambda: ran.append(("after", connection.get_autocommit(), in_pipeline())))

    # Assert: the COMMIT went in one round trip with the write; psycopg's own syncs besides (its
    # BEGIN, the autocommit switches, the pipeline's end: odum_live.sql.pipeline) make six in all.
    assert _round_trips(sent) == 6, str([m for m in sent if m not in ("Bind", "Describe", "Execute")])
    commit = sent.index("COMMIT")
    assert sent[commit - 1] != "Sync" and "Sync" in sent[commit:commit + 5]  # the COMMIT went with the write
    assert ran == [("on_commit", True), ("after", True, False)]
    assert Order.objects.get(pk=order.pk).status == "ACCEPTED"
    assert connection.get_autocommit() and not connection.in_atomic_block


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_transaction_error_at_its_commit_keeps_nothing_and_runs_no_callbacks():
    # Arrange: a fill whose (venue, listing, trade id, side) is taken, sent after a change of the order
    order, duplicate = _order_with_a_taken_trade_id()
    ran: list[str] = []

    # Act
    with pytest.raises(IntegrityError), pipelined_transaction() as after_commit:
        _accept_and_ask_for_after_commit(order, after_commit, ran)
        send_insert([duplicate], read_ids=False)
        transaction.on_commit(lambda: ran.append("on_commit"))

    # Assert: rolled back whole; the connection is usable and back in autocommit
    _assert_nothing_committed(order, ran)
    assert Fill.objects.filter(order=order).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_transaction_exception_in_its_block_rolls_back_and_is_raised():
    order = OrderFactory(status="SUBMITTED")
    ran: list[str] = []

    with pytest.raises(ValueError, match="refused"), pipelined_transaction() as after_commit:
        _accept_and_ask_for_after_commit(order, after_commit, ran)
        raise ValueError("refused")

    _assert_nothing_committed(order, ran)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_transaction_left_to_be_rolled_back_by_an_inner_block_commits_nothing():
    # A failed inner atomic without a savepoint marks the transaction for rollback (Django's rule):
    # the block's end then rolls it back, as Django's outermost atomic does, and runs no callbacks.
    order = OrderFactory(status="SUBMITTED")
    ran: list[str] = []

    with pipelined_transaction() as after_commit:
        _accept_and_ask_for_after_commit(order, after_commit, ran)
        with pytest.raises(ValueError), transaction.atomic(savepoint=False):
            raise ValueError("inner")

    _assert_nothing_committed(order, ran)


def test_pipeline_elsewhere_than_postgresql_yields_false():
    with pipeline() as pipelined:
        assert pipelined is (connection.vendor == "postgresql")


def test_send_insert_same_shape_again_writes_its_own_values():
    # The statement of a shape is built once; the second insert of that shape must carry its own
    # values (JSON, decimals, auto_now_add), not the first one's.
    order = OrderFactory()
    first, second = (OrderEvent(order=order, type=kind, status_before="ROUTED", status_after="ROUTED", actor=actor,
                                ts=order.created_at, payload={"n": n})
                     for n, kind, actor in ((1, "IGNORED", "a"), (2, "SUBMITTED", "b")))

    send_insert([first], read_ids=False)
    send_insert([second], read_ids=False)

    stored = sorted(OrderEvent.objects.filter(order=order).values_list("type", "actor", "payload"))
    assert stored == [("IGNORED", "a", {"n": 1}), ("SUBMITTED", "b", {"n": 2})]


def test_send_insert_several_rows_same_shape_again_reads_its_own_ids_and_values():
    # Several rows with ids read back: one ``VALUES`` row per instance (not PostgreSQL's UNNEST
    # form); the statement is kept per shape and the second batch must carry (and read back) its
    # own rows.
    order = OrderFactory()

    def batch(tag):
        return [OrderEvent(order=order, type="IGNORED", status_before="ROUTED", status_after="ROUTED",
                           actor=f"{tag}{n}", ts=order.created_at, payload={"tag": tag, "n": n}) for n in (1, 2, 3)]

    first, second = batch("a"), batch("b")
    send_insert(first)()
    send_insert(second)()

    for event in (*first, *second):
        stored = OrderEvent.objects.get(pk=event.pk)
        assert (stored.actor, stored.payload) == (event.actor, event.payload)
    assert len({event.pk for event in (*first, *second)}) == 6


def test_send_insert_several_rows_sends_one_value_per_row_and_column():
    # Arrange
    order = OrderFactory()
    rows = [OrderEvent(order=order, type="IGNORED", status_before="ROUTED", status_after="ROUTED", actor=f"r{n}",
                       ts=order.created_at, payload={"n": n}) for n in (1, 2)]

    # Act
    with CaptureQueriesContext(connection) as captured:
        send_insert(rows, read_ids=False)

    # Assert: scalar parameters (psycopg adapts arrays far more slowly), two rows of them
    [query] = captured.captured_queries
    assert "UNNEST" not in query["sql"].upper() and "VALUES" in query["sql"].upper()
    assert sorted(OrderEvent.objects.filter(order=order).values_list("actor", flat=True)) == ["r1", "r2"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's query conversion: PostgreSQL only")
def test_psycopg_keeps_the_conversion_of_the_order_insert_in_its_cache(monkeypatch):
    # The order INSERT has more parameters than psycopg caches by default (50); odum_live.sql raises
    # that bound. A psycopg upgrade that renames or ignores the bound fails here.
    from psycopg import _queries

    assert 50 < len(Order._meta.concrete_fields) <= PSYCOPG_CACHED_PARAMS
    OrderFactory()  # the statement's first conversion

    def uncached(query, encoding):
        raise AssertionError(f"psycopg converted a statement without its cache: {query[:80]!r}")

    monkeypatch.setattr(_queries, "_query2pg_nocache", uncached)

    # Act: the same INSERT again
    order = OrderFactory()

    # Assert
    assert Order.objects.filter(pk=order.pk).exists()
