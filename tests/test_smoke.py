import pytest

from tests.orders.factories import OrderFactory


@pytest.mark.django_db
def test_order_factory_row_gets_derived_client_order_id():
    order = OrderFactory()
    assert order.client_order_id.startswith("OL") and len(order.client_order_id) == 24
