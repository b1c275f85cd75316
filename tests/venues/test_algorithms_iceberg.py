"""IcebergExecAlgorithm on a NautilusTrader BacktestEngine (simulated time: no sleeps, no timing asserts)."""

from decimal import Decimal

import pytest
from nautilus_trader.model.enums import OrderStatus

from venues.algorithms import nautilus_exec_algorithm_params
from venues.algorithms.backtest import PrimaryOrder, btcusdt_binance_spot, quote, run_algorithm_backtest

S = 1_000_000_000
T0 = 1_600_000_000 * S
INSTRUMENT = btcusdt_binance_spot()
LIMIT = Decimal("40000.00")


LATENCY = 10_000_000  # 10 ms to the venue: a refill meets the book as it is 10 ms later


def _market(seconds: int, *, cross_every: int = 0, touch: dict[int, str] | None = None):
    # Asks rest above the buy limit; every `cross_every` s the ask dips through it for 1 ms (the
    # working child fills completely, a refill sent then arrives after the dip), and at the
    # seconds in `touch` it sits at the limit for 1 ms with that size (a partial fill).
    data = []
    touch = touch or {}
    for k in range(seconds + 1):
        ts = T0 + k * S
        data.append(quote(INSTRUMENT, ts, "39999.00", "40000.50"))
        if k in touch:
            data.append(quote(INSTRUMENT, ts + S // 2, "39999.00", "40000.00", ask_size=touch[k]))
        elif cross_every and k and k % cross_every == 0:
            data.append(quote(INSTRUMENT, ts + S // 2, "39999.00", "39999.50"))
        else:
            continue
        data.append(quote(INSTRUMENT, ts + S // 2 + S // 1000, "39999.00", "40000.50"))
    return data


def _run(data, primaries, **kwargs):
    return run_algorithm_backtest(data=data, primaries=primaries, latency_ns=LATENCY, **kwargs)


def _iceberg(display: str, quantity: str, **kwargs) -> PrimaryOrder:
    params = nautilus_exec_algorithm_params("ICEBERG", {"display_qty": display})
    kwargs.setdefault("price", LIMIT)
    kwargs.setdefault("order_type", "LIMIT")
    return PrimaryOrder("ICEBERG", params, Decimal(quantity), submit_at_ns=T0 + S // 2, **kwargs)


def _max_working(run, primary_id: str) -> Decimal:
    return max(working for _, pid, working in run.working if pid == primary_id)


def test_iceberg_shows_display_qty_at_a_time_and_completes_with_primary_last():
    # Arrange: 1 BTC shown 0.3 at a time; the market crosses the limit every 5 s.
    primary = _iceberg("0.3", "1")

    # Act
    run = _run(_market(40, cross_every=5), [primary])

    # Assert
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [o.quantity.as_decimal() for _, o in slices] == [Decimal("0.3")] * 3 + [Decimal("0.1")]
    assert slices[-1][1].client_order_id.value == pid  # the last slice is the primary itself
    assert [c.client_order_id.value for c in run.children(pid)] == [f"{pid}-E1", f"{pid}-E2", f"{pid}-E3"]
    assert all(c.exec_spawn_id.value == pid for c in run.children(pid))
    assert all(o.price.as_decimal() == LIMIT for _, o in slices)
    assert all(o.status == OrderStatus.FILLED for _, o in slices)
    assert sum(o.filled_qty.as_decimal() for _, o in slices) == Decimal("1")
    assert _max_working(run, pid) == Decimal("0.3")
    # Each slice is shown only after the previous one filled completely.
    for (_, previous), (shown_at, _) in zip(slices, slices[1:]):
        assert shown_at >= run.event_times(previous.client_order_id.value, "OrderFilled")[-1]


def test_iceberg_partial_fill_waits_for_child_to_fill_before_refilling():
    # Arrange: at 2 s and 3 s only 0.1 BTC is offered at the limit; the market crosses at 10 s.
    primary = _iceberg("0.3", "0.5")

    # Act
    run = _run(_market(30, cross_every=10, touch={2: "0.1", 3: "0.1"}), [primary])

    # Assert
    pid = run.primary_ids[0]
    first = run.children(pid)[0]
    fills = run.event_times(first.client_order_id.value, "OrderFilled")
    assert [(ts - T0) // S for ts in fills] == [2, 3, 10]  # two partial fills, then the rest
    second_shown = run.slices(pid)[1][0]
    assert second_shown >= fills[-1]
    assert _max_working(run, pid) <= Decimal("0.3")
    assert run.orders[pid].status == OrderStatus.FILLED
    assert run.orders[pid].quantity.as_decimal() == Decimal("0.2")


def test_iceberg_display_qty_is_rounded_down_to_size_increment():
    # Arrange
    primary = _iceberg("0.2500009", "0.5")

    # Act
    run = _run(_market(20, cross_every=5), [primary])

    # Assert: 0.25 (not 0.250001) shown, then the primary with exactly the rest.
    pid = run.primary_ids[0]
    assert [o.quantity.as_decimal() for _, o in run.slices(pid)] == [Decimal("0.25"), Decimal("0.25")]


def test_iceberg_quantity_within_display_is_sent_whole():
    # Arrange
    primary = _iceberg("1", "0.4")

    # Act
    run = _run(_market(10, cross_every=5), [primary])

    # Assert
    pid = run.primary_ids[0]
    assert run.children(pid) == []
    assert run.orders[pid].status == OrderStatus.FILLED


@pytest.mark.parametrize("display_qty, quantity, shown", [
    # 0.03 at a time would leave 0.005 for the last slice (the primary), which the RiskEngine denies
    # (QUANTITY_BELOW_MINIMUM): the second slice shows less, leaving exactly the minimum.
    ("0.03", "0.065", ["0.03", "0.025", "0.01"]),
    # After the first slice 0.015 is left: 0.01 would leave 0.005, itself below the minimum: the whole
    # rest is shown (the one case above display_qty, by less than the minimum).
    ("0.01", "0.025", ["0.01", "0.015"]),
])
def test_iceberg_slice_that_would_leave_a_rest_below_min_quantity_is_resized_and_fills_completely(
        display_qty, quantity, shown):
    # Arrange: venue minimum 0.01 BTC
    instrument = btcusdt_binance_spot(min_quantity="0.01")
    primary = _iceberg(display_qty, quantity)

    # Act
    run = _run(_market(30, cross_every=5), [primary], instrument=instrument)

    # Assert: every slice is one the venue takes, the primary goes last, and the order fills completely.
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [o.quantity.as_decimal() for _, o in slices] == [Decimal(q) for q in shown]
    assert all(o.status == OrderStatus.FILLED for _, o in slices) and slices[-1][1].client_order_id.value == pid
    assert sum(o.filled_qty.as_decimal() for _, o in slices) == Decimal(quantity)
    assert run.orders[pid].status == OrderStatus.FILLED


@pytest.mark.parametrize("bridge_cancels_children", [True, False])
def test_iceberg_primary_cancel_cancels_working_child_and_stops(bridge_cancels_children):
    # Arrange: the first slice fills at 5 s, the second rests; the primary is canceled at 7 s.
    primary = _iceberg("0.3", "1", cancel_at_ns=T0 + 7 * S, cancel_children=bridge_cancels_children)

    # Act
    run = _run(_market(20, cross_every=5), [primary])

    # Assert
    pid = run.primary_ids[0]
    first, second = run.children(pid)  # nothing shown after the cancel
    assert first.status == OrderStatus.FILLED
    assert second.status == OrderStatus.CANCELED
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.event_times(pid, "OrderSubmitted") == []
    assert run.timers_left == []


def test_iceberg_child_denied_by_risk_aborts_and_cancels_primary():
    # Arrange: the node's risk limit (10 000 USDT per order) denies a 0.3 BTC slice (12 000 USDT).
    primary = _iceberg("0.3", "1")

    # Act
    run = _run(_market(20, cross_every=5), [primary], max_notional_per_order={"BTCUSDT.BINANCE": 10_000})

    # Assert
    pid = run.primary_ids[0]
    (child,) = run.children(pid)
    assert child.status == OrderStatus.DENIED
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.event_times(pid, "OrderSubmitted") == []


@pytest.mark.parametrize(
    "order_type, tif, params, named",
    [
        ("MARKET", "GTC", {"display_qty": "0.1"}, "order_type"),
        ("LIMIT", "IOC", {"display_qty": "0.1"}, "time_in_force"),
        ("LIMIT", "GTC", {}, "display_qty"),
        ("LIMIT", "GTC", {"display_qty": "0.0000001"}, "display_qty"),
        ("LIMIT", "GTC", {"display_qty": "-1"}, "display_qty"),
    ],
)
def test_iceberg_unworkable_primary_is_denied_with_reason(order_type, tif, params, named):
    # Arrange
    primary = PrimaryOrder(
        "ICEBERG",
        params,
        Decimal("1"),
        order_type=order_type,
        price=LIMIT if order_type == "LIMIT" else None,
        time_in_force=tif,
        submit_at_ns=T0 + S // 2,
    )

    # Act
    run = _run(_market(5), [primary])

    # Assert
    pid = run.primary_ids[0]
    assert run.orders[pid].status == OrderStatus.DENIED
    (denied,) = [e for _, e in run.events if type(e).__name__ == "OrderDenied"]
    assert named in denied.reason
    assert run.children(pid) == []


def test_iceberg_display_qty_below_the_venue_min_notional_is_denied_naming_it():
    # Arrange: Binance's NOTIONAL filter, 10 USDT; a clip of 0.0002 BTC @ 40000 is 8 USDT, so the node's
    # RiskEngine would deny the first clip (the iceberg then ended CANCELED, its reason on the clip only).
    instrument = btcusdt_binance_spot(min_notional="10")
    primary = _iceberg("0.0002", "0.01")

    # Act
    run = _run(_market(5), [primary], instrument=instrument)

    # Assert: the primary itself is DENIED, its reason naming display_qty and the minimum notional.
    pid = run.primary_ids[0]
    assert run.orders[pid].status == OrderStatus.DENIED
    (denied,) = [e for _, e in run.events if type(e).__name__ == "OrderDenied"]
    assert "display_qty" in denied.reason and "min_notional" in denied.reason
    assert run.children(pid) == []


def test_iceberg_clips_leave_no_rest_below_the_venue_min_notional():
    # Arrange: minimum notional 10 USDT = 0.00025 BTC at the 40000 limit; 0.0011 BTC shown 0.0005 at a
    # time would leave a last clip of 0.0001 (4 USDT), which the node's RiskEngine denies.
    instrument = btcusdt_binance_spot(min_notional="10")
    primary = _iceberg("0.0005", "0.0011")

    # Act
    run = _run(_market(30, cross_every=5), [primary], instrument=instrument)

    # Assert: 0.0005, then 0.00035 (leaving exactly the minimum), then the primary with 0.00025.
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [o.quantity.as_decimal() for _, o in slices] == [Decimal("0.0005"), Decimal("0.00035"), Decimal("0.00025")]
    assert all(o.status == OrderStatus.FILLED for _, o in slices)
    assert run.orders[pid].status == OrderStatus.FILLED


def test_iceberg_display_qty_above_the_venue_max_quantity_is_denied_naming_it():
    # Arrange: Binance's LOT_SIZE maxQty, here 0.01 BTC; a clip of 0.02 BTC would be denied by the node's
    # RiskEngine (QUANTITY_EXCEEDS_MAXIMUM) and end the iceberg CANCELED, its reason on the clip only.
    instrument = btcusdt_binance_spot(max_quantity="0.01")
    primary = _iceberg("0.02", "0.05")

    # Act
    run = _run(_market(5), [primary], instrument=instrument)

    # Assert: the primary itself is DENIED, its reason naming display_qty and the maximum.
    pid = run.primary_ids[0]
    assert run.orders[pid].status == OrderStatus.DENIED
    (denied,) = [e for _, e in run.events if type(e).__name__ == "OrderDenied"]
    assert "display_qty" in denied.reason and "max_quantity" in denied.reason
    assert run.children(pid) == []
