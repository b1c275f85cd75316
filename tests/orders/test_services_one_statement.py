"""orders.services.one_statement: a transition and its event in one PostgreSQL statement."""

import uuid

import pytest
from django.utils import timezone

from orders.models import OrderEvent
from orders.services.one_statement import transition_in_one_statement
from orders.state import IllegalTransition, OrderStatus as S
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db


def _move(*, where, source, target, returning=("id", "status")):
    return transition_in_one_statement(where=where, source=source, target=target, set_columns={}, values={},
                                       event_type=OrderEvent.Type.ACCEPTED, actor="test", ts=timezone.now(),
                                       payload={"detail": "test"}, returning=returning)


def test_transition_in_one_statement_refuses_an_illegal_transition_before_writing():
    order = OrderFactory(status=S.FILLED)

    with pytest.raises(IllegalTransition):
        _move(where={"id": order.pk}, source=S.FILLED, target=S.ACCEPTED)

    assert not OrderEvent.objects.filter(order=order).exists()


def test_transition_in_one_statement_needs_the_id_returned():
    with pytest.raises(ValueError, match="returning"):
        _move(where={"id": uuid.uuid4()}, source=S.SUBMITTED, target=S.ACCEPTED, returning=("status",))


@pytest.mark.postgres
def test_transition_in_one_statement_moves_only_an_order_in_the_source_status():
    # Arrange
    submitted, pending = OrderFactory(status=S.SUBMITTED), OrderFactory(status=S.PENDING_CANCEL)

    # Act
    moved = _move(where={"id": submitted.pk}, source=S.SUBMITTED, target=S.ACCEPTED)
    untouched = _move(where={"id": pending.pk}, source=S.SUBMITTED, target=S.ACCEPTED)

    # Assert: one row moved with its event; the other left as it was, without an event.
    submitted.refresh_from_db()
    pending.refresh_from_db()
    assert moved.pk == submitted.pk and moved.status == S.ACCEPTED and submitted.status == S.ACCEPTED
    assert list(submitted.events.values_list("type", "status_before", "status_after", "actor")) == [
        (OrderEvent.Type.ACCEPTED, S.SUBMITTED, S.ACCEPTED, "test")]
    assert untouched is None and pending.status == S.PENDING_CANCEL and not pending.events.exists()


def test_transition_in_one_statement_elsewhere_than_postgresql_writes_nothing():
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("the one-statement form runs on PostgreSQL")
    order = OrderFactory(status=S.SUBMITTED)

    assert _move(where={"id": order.pk}, source=S.SUBMITTED, target=S.ACCEPTED) is None

    order.refresh_from_db()
    assert order.status == S.SUBMITTED and not order.events.exists()
