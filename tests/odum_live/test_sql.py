"""odum_live.sql.CompiledQuery: a queryset compiled once, run again with new arguments."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models.fields.json import KT

from odum_live.sql import CompiledQuery
from orders.models import Order
from tests.orders.factories import OrderFactory

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
