"""TWAPExecAlgorithm (ours, on the slicing base) on a NautilusTrader BacktestEngine (simulated time)."""

from decimal import Decimal

import pytest
from nautilus_trader.model.enums import OrderStatus, OrderType

from venues.algorithms import nautilus_exec_algorithm_params
from venues.algorithms.backtest import PrimaryOrder, btcusdt_binance_spot, quote, run_algorithm_backtest

S = 1_000_000_000
T0 = 1_600_000_000 * S
INSTRUMENT = btcusdt_binance_spot()


def _quotes(until_s: int):
    return [quote(INSTRUMENT, T0 + i * S // 2, "40000.00", "40000.01") for i in range(2 * until_s + 1)]


def _twap(params: dict, quantity: str, **kwargs) -> PrimaryOrder:
    return PrimaryOrder("TWAP", nautilus_exec_algorithm_params("TWAP", params), Decimal(quantity), **kwargs)


def test_twap_uneven_quantity_slices_sum_exactly_with_the_extra_increment_first():
    # Arrange: 0.031 BTC over 3 slices of 10 s: 31 000 units of 0.000001 → 10 334, 10 333, 10 333.
    primary = _twap({"horizon_secs": 30, "interval_secs": 10}, "0.031", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(50), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [o.quantity.as_decimal() for _, o in slices] == [Decimal("0.010334"), Decimal("0.010333"),
                                                           Decimal("0.010333")]
    assert [(t - T0) // S for t, _ in slices] == [1, 11, 21]
    assert slices[-1][1].client_order_id.value == pid  # the last slice is the primary itself
    assert run.orders[pid].status == OrderStatus.FILLED
    assert run.timers_left == []


def test_twap_slice_leaving_a_rest_below_min_quantity_sends_less_and_fills_completely():
    # Arrange: venue minimum 0.01 BTC; 0.021 BTC over 3 slices plans 0.007 each (TWAP shares VWAP's slicing).
    instrument = btcusdt_binance_spot(min_quantity="0.01")
    primary = _twap({"horizon_secs": 30, "interval_secs": 10}, "0.021", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(50), primaries=[primary], instrument=instrument)

    # Assert: carried, then 0.011 (0.014 would leave 0.007, denied at the node), then the primary with 0.010.
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [((t - T0) // S, o.quantity.as_decimal()) for t, o in slices] == [(11, Decimal("0.011")),
                                                                             (21, Decimal("0.010"))]
    assert all(o.status == OrderStatus.FILLED for _, o in slices)
    assert run.orders[pid].status == OrderStatus.FILLED


def test_twap_limit_primary_slices_rest_at_the_limit_price():
    # Arrange: a LIMIT buy below the market: every slice rests at the primary's price.
    primary = _twap({"horizon_secs": 20, "interval_secs": 10}, "0.02", order_type="LIMIT",
                    price=Decimal("39000.00"), submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(40), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    slices = [o for _, o in run.slices(pid)]
    assert [o.order_type for o in slices] == [OrderType.LIMIT, OrderType.LIMIT]
    assert {o.price.as_decimal() for o in slices} == {Decimal("39000.00")}
    assert {o.status for o in slices} == {OrderStatus.ACCEPTED}


def test_twap_child_denied_by_the_node_aborts_and_cancels_the_primary_remainder():
    # Arrange: the node's per-order notional limit (15 000 USDT) denies every 0.5 BTC slice; the
    # NautilusTrader example TWAP kept its timer and held the primary for ever in this case.
    primary = _twap({"horizon_secs": 20, "interval_secs": 10}, "1", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(40), primaries=[primary],
                                 max_notional_per_order={"BTCUSDT.BINANCE": 15_000})

    # Assert
    pid = run.primary_ids[0]
    (child,) = run.children(pid)
    assert child.status == OrderStatus.DENIED
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.timers_left == []


@pytest.mark.parametrize("param, value", [("max_participation", "0.1"), ("volume_profile", "1,1")])
def test_twap_primary_with_a_vwap_parameter_is_denied_naming_it(param, value):
    # Arrange: params given straight to the node (the API refuses them earlier).
    primary = PrimaryOrder("TWAP", {"horizon_secs": 20, "interval_secs": 10, param: value}, Decimal("0.02"),
                           submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(20), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert run.orders[pid].status == OrderStatus.DENIED
    (denied,) = [e for _, e in run.events if type(e).__name__ == "OrderDenied"]
    assert param in denied.reason and "TWAP" in denied.reason


def test_twap_slices_below_the_venue_min_notional_are_carried_and_the_parent_fills_completely():
    # Arrange: Binance's NOTIONAL filter, 10 USDT (the seeded paper listing's); 0.002 BTC (80 USDT, a
    # valid order) over 10 slices plans 0.0002 BTC = 8 USDT each, which the node's RiskEngine denies
    # (NOTIONAL_LESS_THAN_MIN_FOR_INSTRUMENT) — the first one used to abort the TWAP with nothing filled.
    instrument = btcusdt_binance_spot(min_notional="10")
    primary = _twap({"horizon_secs": 100, "interval_secs": 10}, "0.002", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(120), primaries=[primary], instrument=instrument)

    # Assert: every slice is worth at least 10 USDT at the ask it is sent against, none is denied, and
    # the parent fills completely.
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [e for _, e in run.events if type(e).__name__ == "OrderDenied"] == []
    assert all(o.quantity.as_decimal() * Decimal("40000.01") >= 10 for _, o in slices)
    assert all(o.status == OrderStatus.FILLED for _, o in slices)
    assert sum(o.filled_qty.as_decimal() for _, o in slices) == Decimal("0.002")
    assert run.orders[pid].status == OrderStatus.FILLED
    assert run.timers_left == []


def test_twap_slice_above_the_venue_max_quantity_is_split_into_children_within_it():
    # Arrange: Binance's LOT_SIZE / MARKET_LOT_SIZE maxQty, here 0.01 BTC; 0.05 BTC over 2 slices plans
    # 0.025 BTC each, which the node's RiskEngine denies (QUANTITY_EXCEEDS_MAXIMUM) — the first slice
    # used to abort the TWAP with nothing filled.
    instrument = btcusdt_binance_spot(max_quantity="0.01")
    primary = _twap({"horizon_secs": 20, "interval_secs": 10}, "0.05", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(40), primaries=[primary], instrument=instrument)

    # Assert: no order above 0.01 BTC, none denied; each interval still sends its planned 0.025 BTC
    # (as several children at once), the primary itself last, and the parent fills completely.
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [e for _, e in run.events if type(e).__name__ == "OrderDenied"] == []
    assert all(o.quantity.as_decimal() <= Decimal("0.01") for _, o in slices)
    per_interval: dict[int, Decimal] = {}
    for t, o in slices:
        per_interval[(t - T0) // S] = per_interval.get((t - T0) // S, Decimal(0)) + o.quantity.as_decimal()
    assert per_interval == {1: Decimal("0.025"), 11: Decimal("0.025")}
    assert slices[-1][1].client_order_id.value == pid
    assert all(o.status == OrderStatus.FILLED for _, o in slices)
    assert run.orders[pid].status == OrderStatus.FILLED
    assert run.timers_left == []


def test_twap_split_slice_whose_first_child_is_denied_sends_no_more_children():
    # Arrange: 0.5 BTC slices split into three of ~0.166667 BTC (max_quantity 0.2), each ~6 667 USDT,
    # above the node's per-order notional limit of 5 000 USDT: the first child is denied.
    instrument = btcusdt_binance_spot(max_quantity="0.2")
    primary = _twap({"horizon_secs": 20, "interval_secs": 10}, "1", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(40), primaries=[primary], instrument=instrument,
                                 max_notional_per_order={"BTCUSDT.BINANCE": 5_000})

    # Assert: the denial aborts the sequence before the rest of the split is spawned.
    pid = run.primary_ids[0]
    (child,) = run.children(pid)
    assert child.status == OrderStatus.DENIED
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.timers_left == []
