from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from orders.models import Order, OrderEvent
from tests.orders.conftest import client_for
from tests.orders.factories import OrderFactory, UserFactory, order_body

pytestmark = pytest.mark.django_db


def _cancel(client, order, **body):
    return client.post(f"/api/orders/{order.pk}/cancel", body, format="json")


def test_cancel_routed_order_is_200_canceled(svc_client, strategy):
    order = OrderFactory(strategy=strategy, status="ROUTED")
    response = _cancel(svc_client, order, reason="flat")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED" and response.json()["closed_at"]
    assert OrderEvent.objects.get(order=order).payload["reason"] == "flat"


def test_cancel_submitted_order_via_api_after_submit_flow(tradable, svc_client, django_capture_on_commit_callbacks):
    # Arrange: a real order, moved to the venue as the trading worker would
    order_id = svc_client.post("/api/orders", order_body(), format="json").json()["order_id"]
    Order.objects.filter(pk=order_id).update(status="ACCEPTED")
    # Act
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = svc_client.post(f"/api/orders/{order_id}/cancel", {}, format="json")
    # Assert
    assert response.status_code == 202
    assert response.json()["status"] == "PENDING_CANCEL"
    assert len(callbacks) == 2  # the publication to the order stream, then the dispatch
    assert OrderEvent.objects.filter(order_id=order_id, type="DISPATCHED", payload__command="cancel").exists()


def test_cancel_malformed_multipart_body_is_415_and_changes_nothing(svc_client, strategy):
    # Arrange: a multipart body of no part at all, which the form parser read as an empty request
    order = OrderFactory(strategy=strategy, status="ROUTED")
    body = b"--b\r\n6.592743450360763e+16--b--\r\n"
    # Act
    response = svc_client.post(f"/api/orders/{order.pk}/cancel", body, content_type="multipart/form-data; boundary=b")
    # Assert
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert Order.objects.get(pk=order.pk).status == "ROUTED"


def test_cancel_number_as_reason_is_400_naming_reason_and_changes_nothing(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, status="ROUTED")
    # Act
    response = _cancel(svc_client, order, reason=42)
    # Assert
    assert response.status_code == 400 and "reason" in response.json()["fields"]
    assert Order.objects.get(pk=order.pk).status == "ROUTED"


def test_cancel_without_body_is_200_canceled(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, status="ROUTED")
    # Act: the body is optional (curl -X POST with nothing)
    response = svc_client.generic("POST", f"/api/orders/{order.pk}/cancel")
    # Assert
    assert response.status_code == 200 and response.json()["status"] == "CANCELED"


@pytest.mark.parametrize("order_id", ["null,null", "123", "not-a-uuid"])
def test_cancel_malformed_order_id_is_400_json_naming_order_id(svc_client, order_id):
    # Act
    response = svc_client.post(f"/api/orders/{order_id}/cancel", {}, format="json")
    # Assert
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "order_id" in response.json()["fields"]


def test_cancel_order_id_in_upper_case_cancels_the_order(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, status="ROUTED")
    # Act: a UUID is case-insensitive (RFC 9562)
    response = svc_client.post(f"/api/orders/{str(order.pk).upper()}/cancel", {}, format="json")
    # Assert
    assert response.status_code == 200 and response.json()["order_id"] == str(order.pk)
    assert Order.objects.get(pk=order.pk).status == "CANCELED"


@pytest.mark.parametrize("status", ["FILLED", "CANCELED", "DENIED", "PENDING_CANCEL"])
def test_cancel_not_cancelable_is_409_with_current_status(svc_client, strategy, status):
    order = OrderFactory(strategy=strategy, status=status, filled_quantity=Decimal("0"))
    response = _cancel(svc_client, order)
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "order_not_cancelable" and body["status"] == status and status in body["detail"]


def test_cancel_twice_second_is_409(svc_client, strategy):
    order = OrderFactory(strategy=strategy, status="ROUTED")
    assert _cancel(svc_client, order).status_code == 200
    second = _cancel(svc_client, order)
    assert second.status_code == 409 and second.json()["status"] == "CANCELED"


def test_cancel_by_viewer_who_may_not_trade_is_403(strategy):
    order = OrderFactory(strategy=strategy, status="ROUTED")
    viewer = UserFactory(username="auditor")
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    response = _cancel(client_for(viewer), order)
    assert response.status_code == 403 and response.json()["strategy_id"] == "alpha"
    assert Order.objects.get(pk=order.pk).status == "ROUTED"


def _person(strategy, *codenames):
    # A person listed among the strategy's traders, holding the given orders permissions.
    person = UserFactory(username="listed")
    person.user_permissions.add(*Permission.objects.filter(content_type__app_label="orders", codename__in=codenames))
    strategy.traders.add(person)
    return person


def test_cancel_listed_person_without_change_order_is_403_naming_the_permission(strategy):
    # Arrange: a trader of the strategy who may see its orders but not cancel them (as on the pages)
    order = OrderFactory(strategy=strategy, status="ROUTED")
    person = _person(strategy, "view_order")
    # Act
    response = _cancel(client_for(person), order)
    # Assert
    assert response.status_code == 403
    body = response.json()
    assert (body["error"], body["strategy_id"]) == ("permission_denied", "alpha")
    assert "orders.change_order" in body["detail"]
    assert Order.objects.get(pk=order.pk).status == "ROUTED"


def test_cancel_listed_person_with_change_order_is_200(strategy):
    order = OrderFactory(strategy=strategy, status="ROUTED")

    response = _cancel(client_for(_person(strategy, "change_order")), order)

    assert response.status_code == 200 and response.json()["status"] == "CANCELED"


def test_cancel_unknown_field_is_400(svc_client, strategy):
    order = OrderFactory(strategy=strategy, status="ROUTED")
    response = _cancel(svc_client, order, status="CANCELED")
    assert response.status_code == 400 and "status" in response.json()["fields"]


def test_cancel_reason_with_nul_is_400_with_the_project_reason_and_changes_nothing(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, status="ROUTED")
    # Act: PostgreSQL cannot store a NUL in text (odum_live.fields.refuse_nul)
    response = _cancel(svc_client, order, reason="fat\x00finger")
    # Assert: the project's reason under the field, as the web cancel and the other inputs answer
    assert response.status_code == 400
    assert response.json()["fields"] == {"reason": ["must not contain the NUL character (\\u0000)"]}
    assert Order.objects.get(pk=order.pk).status == "ROUTED"
