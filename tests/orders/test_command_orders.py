"""``manage.py orders submit|cancel|list|show`` (orders/management/commands/orders.py)."""

import io
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.models import Order, OrderEvent
from tests.orders import web_fixtures
from tests.orders.conftest import SPOT_KEY
from tests.orders.factories import FillFactory, OrderFactory, StrategyFactory, algorithm_family

pytestmark = pytest.mark.django_db
trader = web_fixtures.trader


def orders(*args) -> str:
    out = io.StringIO()
    call_command("orders", *args, stdout=out)
    return out.getvalue()


def submit(*extra, user="", qty="0.05"):
    return orders("submit", "--user", user, "--strategy", "alpha", "--instrument", SPOT_KEY, "--side", "BUY",
                  "--qty", qty, *extra)


def test_submit_market_prints_order_block_and_attributes_user(trader, tradable):
    out = submit("--operation-id", "cli-1", user=trader.username)

    order = Order.objects.get(operation_id="cli-1")
    assert (order.status, order.created_by, order.quantity) == ("ROUTED", trader.username, Decimal("0.05"))
    assert out.splitlines()[0] == f"order {order.id} (new)"
    assert f"  order         BUY 0.05 {SPOT_KEY} MARKET GTC NORMAL" in out
    assert "  status        ROUTED filled 0/0.05 avg - fees 0" in out


def test_submit_same_operation_id_replays(trader, tradable):
    submit("--operation-id", "cli-1", user=trader.username)

    out = submit("--operation-id", "cli-1", user=trader.username)

    assert "operation id seen before" in out.splitlines()[0]
    assert Order.objects.count() == 1


def test_submit_generates_operation_id(trader, tradable):
    submit(user=trader.username)

    assert Order.objects.get().operation_id.startswith("cli-")


def test_submit_algorithm_params(trader, tradable):
    submit("--type", "LIMIT", "--price", "40000", "--algorithm", "ICEBERG", "--param", "display_qty=0.01",
           user=trader.username)

    assert Order.objects.get().exec_algorithm_params == {"display_qty": "0.01"}


@pytest.mark.parametrize(("value", "reason"), [
    (" 0.01", "must not have leading or trailing whitespace"),
    ("1e-2", "must be a plain decimal string"),
    ("+0.01", "must be a plain decimal string"),
    ("NaN", "must be a plain decimal string"),
])
def test_submit_algorithm_decimal_param_outside_the_decimal_rule_names_param_and_reason(trader, tradable, value,
                                                                                         reason):
    # Act / Assert: the API's reason for a decimal it refuses, under exec_algorithm_params → display_qty
    with pytest.raises(CommandError, match=f"exec_algorithm_params: display_qty: {reason}"):
        submit("--type", "LIMIT", "--price", "40000", "--algorithm", "ICEBERG", "--param", f"display_qty={value}",
               user=trader.username)
    assert not Order.objects.exists()


def test_submit_vwap_decimal_params_are_stored_normalised(trader, tradable):
    # Act
    submit("--algorithm", "VWAP", "--param", "horizon_secs=30", "--param", "interval_secs=10",
           "--param", "max_participation=0.50", "--param", "volume_profile=1,2.0,.5", user=trader.username)
    # Assert
    assert Order.objects.get().exec_algorithm_params == {"horizon_secs": 30, "interval_secs": 10,
                                                         "max_participation": "0.5",
                                                         "volume_profile": ["1", "2", "0.5"]}


@pytest.mark.parametrize(("extra", "qty", "field"), [
    ((), "0", "quantity"),
    (("--type", "LIMIT"), "1", "price"),
    (("--algorithm", "TWAP", "--param", "horizon_secs=5", "--param", "interval_secs=60"), "1", "interval_secs"),
    (("--param", "bogus=1"), "1", "exec_algorithm_params"),
])
def test_submit_invalid_names_the_field_and_fails(trader, tradable, extra, qty, field):
    with pytest.raises(CommandError, match=field):
        submit(*extra, user=trader.username, qty=qty)
    assert not Order.objects.exists()


def test_submit_gtd_with_passed_expire_time_names_expire_time_and_fails(trader, tradable):
    # Act / Assert
    with pytest.raises(CommandError, match="expire_time: must be in the future"):
        submit("--type", "LIMIT", "--price", "40000", "--tif", "GTD", "--expire-time", "2001-01-01T00:00:00Z",
               user=trader.username)
    assert not Order.objects.exists()


def test_submit_gtd_same_operation_id_after_expire_time_replays(trader, tradable):
    # Arrange: a GTD order accepted while its expire_time was ahead
    expire = timezone.now() + timedelta(minutes=1)
    gtd = ("--type", "LIMIT", "--price", "40000", "--tif", "GTD", "--expire-time", expire.isoformat(),
           "--operation-id", "cli-gtd")
    submit(*gtd, user=trader.username)
    # Act: the same command again, after the expire_time
    with mock.patch("orders.services.request.dj_timezone", **{"now.return_value": expire + timedelta(seconds=5)}):
        out = submit(*gtd, user=trader.username)
    # Assert
    assert "operation id seen before" in out.splitlines()[0]
    assert Order.objects.count() == 1


def test_submit_operation_id_with_edge_whitespace_names_it_and_fails(trader, tradable):
    # Act / Assert: "cli-1 " is not silently "cli-1"
    with pytest.raises(CommandError, match="operation_id: must be printable characters without whitespace"):
        submit("--operation-id", "cli-1 ", user=trader.username)
    assert not Order.objects.exists()


def test_submit_unknown_user_fails(tradable, strategy):
    with pytest.raises(CommandError, match="user: no user 'ghost'"):
        submit(user="ghost")


def test_submit_error_exits_nonzero_naming_the_field(trader, tradable, capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "orders", "submit", "--user", trader.username, "--strategy", "alpha",
                                   "--instrument", SPOT_KEY, "--side", "BUY", "--qty", "-1"])

    assert exited.value.code == 1
    assert "quantity: must be a decimal greater than zero" in capsys.readouterr().err


def test_list_prints_table_with_filters(strategy):
    OrderFactory(strategy=strategy, operation_id="op-routed")
    OrderFactory(strategy=strategy, operation_id="op-filled", status="FILLED")

    out = orders("list", "--status", "FILLED")

    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ORDER", "ID", "OPERATION", "ID"]
    assert len(lines) == 2 and "op-filled" in lines[1] and "FILLED" in lines[1]


def test_list_bad_filter_names_it(db):
    with pytest.raises(CommandError, match="instrument"):
        orders("list", "--instrument", "nope")


def test_list_as_user_respects_scope(strategy):
    OrderFactory(strategy=strategy, operation_id="op-mine")
    OrderFactory(strategy=StrategyFactory(id="beta"), operation_id="op-theirs")
    person = web_fixtures.UserFactory(username="plain-person")
    strategy.traders.add(person)

    out = orders("list", "--user", "plain-person")

    assert "op-mine" in out and "op-theirs" not in out


def test_show_prints_timeline_fills_risk_routing(strategy):
    order = OrderFactory(strategy=strategy, operation_id="op-show", status="FILLED",
                         risk_result={"passed": True, "checks": [{"check": "max_order_qty", "passed": True,
                                                                  "limit": "10", "observed": "0.01"}]},
                         routing_decision={"venue": "BINANCE-SPOT", "reason": "cheapest",
                                           "candidates": [{"venue": "BINANCE-SPOT", "eligible": True,
                                                           "total_bps": "11", "fee_bps": "10"}]})
    FillFactory(order=order, venue_trade_id="T-1", price=Decimal("40000"), quantity=Decimal("0.01"))

    out = orders("show", "op-show")

    assert f"order {order.id}" in out
    assert "fills         1" in out and "BINANCE-SPOT:T-1" in out
    assert "PASS max_order_qty" in out and "observed 0.01 limit 10" in out
    assert "* BINANCE-SPOT" in out and "total 11 bps" in out


def test_show_algorithm_parent_prints_the_family_fills_naming_each_slice(strategy):
    # Arrange: a TWAP parent filled by its primary and two slices
    parent, (first, second) = algorithm_family(strategy)

    # Act
    out = orders("show", str(parent.id))

    # Assert: the three fills, oldest first, each naming the order it was booked on, as the order page lists them
    fills = [line for line in out.splitlines() if "BINANCE-SPOT:T-" in line]
    assert [line.rsplit("  ", 2)[-2:] for line in fills] == [
        ["BINANCE-SPOT:T-primary", "this order"], ["BINANCE-SPOT:T-slice-1", f"slice {first.id}"],
        ["BINANCE-SPOT:T-slice-2", f"slice {second.id}"]]
    assert "fills         3 of this order and its slices" in out


def test_show_prints_fees_per_fee_currency(strategy):
    # Arrange: the primary and slice 2 pay their fees in USDT (0.1 + 0.15), slice 1 in BNB (0.15)
    parent, _ = algorithm_family(strategy, fee_currencies=("USDT", "BNB", "USDT"))

    # Act
    out = orders("show", str(parent.id))

    # Assert
    assert "  status        FILLED filled 0.02/0.02 avg 40010 fees 0.25 USDT + 0.15 BNB" in out


def test_cancel_partially_filled_order_prints_fees_per_fee_currency(trader, strategy):
    # Arrange: at the venue, two fills so far, paying 0.4 USDT and 0.00001 BNB
    order = OrderFactory(strategy=strategy, status="PARTIALLY_FILLED", filled_quantity=Decimal("0.004"),
                         avg_fill_price=Decimal("40000"), fees=Decimal("0.40001"))
    FillFactory(order=order, quantity=Decimal("0.002"), fee=Decimal("0.4"), fee_currency="USDT")
    FillFactory(order=order, quantity=Decimal("0.002"), fee=Decimal("0.00001"), fee_currency="BNB")

    # Act
    out = orders("cancel", str(order.id), "--user", trader.username)

    # Assert: not "fees 0.40001"
    assert "filled 0.004/0.01 avg 40000 fees 0.4 USDT + 0.00001 BNB" in out


def test_cancel_by_trader(trader, strategy):
    order = OrderFactory(strategy=strategy)

    out = orders("cancel", str(order.id), "--user", trader.username, "--reason", "done")

    assert "CANCELED" in out
    event = OrderEvent.objects.get(order=order, type="CANCELED")
    assert (event.actor, event.payload["reason"]) == (trader.username, "done")


def test_cancel_by_listed_person_without_change_order_fails_naming_it(strategy):
    # Arrange: on the strategy's traders, but a viewer (the API and the pages refuse the same)
    strategy.traders.add(web_fixtures.person_in("viewer", username="vera"))
    order = OrderFactory(strategy=strategy)

    # Act / Assert
    with pytest.raises(CommandError, match="lack the permission orders.change_order"):
        orders("cancel", str(order.id), "--user", "vera")
    order.refresh_from_db()
    assert order.status == "ROUTED"


def test_cancel_by_risk_manager_of_any_strategy(strategy):
    web_fixtures.person_in("risk manager", username="rita")
    order = OrderFactory(strategy=strategy)

    assert "CANCELED" in orders("cancel", str(order.id), "--user", "rita")


def test_cancel_by_viewer_fails(strategy):
    order = OrderFactory(strategy=strategy)
    web_fixtures.person_in("viewer", username="vera")

    with pytest.raises(CommandError, match="may not cancel"):
        orders("cancel", str(order.id), "--user", "vera")
    order.refresh_from_db()
    assert order.status == "ROUTED"
