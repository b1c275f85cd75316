"""VWAPExecAlgorithm on a NautilusTrader BacktestEngine (simulated time: no sleeps, no timing asserts)."""

from decimal import Decimal

import pytest
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.objects import Price, Quantity

from tests.helpers import MARKET_DATA, needs_market_data
from venues.algorithms import nautilus_exec_algorithm_params
from venues.algorithms.backtest import (
    PrimaryOrder,
    btcusdt_binance_spot,
    quote,
    run_algorithm_backtest,
    trade,
)
from venues.algorithms.iceberg import IcebergExecAlgorithm
from venues.algorithms.vwap import VWAPExecAlgorithm, VWAPExecAlgorithmConfig

S = 1_000_000_000
T0 = 1_600_000_000 * S
INSTRUMENT = btcusdt_binance_spot()


def _quotes(until_s: int, *, bid="40000.00", ask="40000.01"):
    # Deep quotes every 0.5 s, so timers fire on schedule and market orders fill completely.
    return [quote(INSTRUMENT, T0 + i * S // 2, bid, ask) for i in range(2 * until_s + 1)]


def _trades(sizes_by_second: dict[int, str]):
    # One print at second k + 0.25 for each entry, never on a timer boundary.
    return [
        trade(INSTRUMENT, T0 + k * S + S // 4, "40000.00", size, f"T{k}") for k, size in sorted(sizes_by_second.items())
    ]


def _minute_bars(volumes_by_close_s: dict[int, str]):
    # 1-minute bars stamped at their close (s after T0), with the given volumes in BTC.
    bar_type = BarType.from_str("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL")
    px = Price.from_str("40000.00")
    return [
        Bar(bar_type, px, px, px, px, Quantity.from_str(f"{Decimal(v):.6f}"), T0 + close_s * S, T0 + close_s * S)
        for close_s, v in sorted(volumes_by_close_s.items())
    ]


def _vwap(params: dict, quantity: str, **kwargs) -> PrimaryOrder:
    return PrimaryOrder("VWAP", params, Decimal(quantity), **kwargs)


def _quantities(slices) -> list[Decimal]:
    return [order.quantity.as_decimal() for _, order in slices]


def _filled(run, primary_id: str) -> Decimal:
    orders = [*run.children(primary_id), run.orders[primary_id]]
    return sum((o.filled_qty.as_decimal() for o in orders), Decimal(0))


# -- profile from params ----------------------------------------------------------------------------


def test_vwap_volume_profile_param_slices_proportionally_and_sums_exactly():
    # Arrange: 0.100001 BTC over 5 intervals of 10 s, weights 1:2:3:0:4 (one increment left over).
    params = nautilus_exec_algorithm_params(
        "VWAP",
        {
            "horizon_secs": 50,
            "interval_secs": 10,
            "max_participation": "1",
            "volume_profile": ["1", "2", "3", "0", "4"],
        },
    )
    params.pop("max_participation")  # no cap: this test is about the shape alone
    primary = _vwap(params, "0.100001", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(70), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert _quantities(slices) == [Decimal("0.010000"), Decimal("0.020000"), Decimal("0.030000"), Decimal("0.040001")]
    assert sum(_quantities(slices)) == Decimal("0.100001")
    assert [(ts - T0) // S for ts, _ in slices] == [1, 11, 21, 41]  # nothing at the zero-weight interval
    assert slices[-1][1].client_order_id.value == pid  # the last slice is the primary itself
    children = run.children(pid)
    assert [c.client_order_id.value for c in children] == [f"{pid}-E1", f"{pid}-E2", f"{pid}-E3"]
    assert all(c.exec_spawn_id.value == pid for c in children)
    assert all(o.status == OrderStatus.FILLED for _, o in slices)
    assert _filled(run, pid) == Decimal("0.100001")
    assert run.timers_left == []


def test_vwap_volume_profile_with_zero_tail_sends_primary_at_last_weighted_interval():
    # Arrange
    primary = _vwap({"horizon_secs": 30, "interval_secs": 10, "volume_profile": "1,1,0"}, "0.5", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(50), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [(ts - T0) // S for ts, _ in slices] == [1, 11]
    assert _quantities(slices) == [Decimal("0.25"), Decimal("0.25")]
    assert slices[-1][1].client_order_id.value == pid
    assert run.orders[pid].status == OrderStatus.FILLED


def test_vwap_slice_below_min_quantity_is_carried_to_the_next_slice():
    # Arrange: the venue's minimum is 0.01 BTC; weights 1:19 plan 0.005 then 0.095.
    instrument = btcusdt_binance_spot(min_quantity="0.01")
    primary = _vwap({"horizon_secs": 20, "interval_secs": 10, "volume_profile": "1,19"}, "0.1", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(30), primaries=[primary], instrument=instrument)

    # Assert: nothing below the minimum was sent; the primary carried the whole quantity.
    pid = run.primary_ids[0]
    assert run.children(pid) == []
    assert [((ts - T0) // S, o.quantity.as_decimal()) for ts, o in run.slices(pid)] == [(11, Decimal("0.1"))]
    assert run.orders[pid].status == OrderStatus.FILLED


def test_vwap_slice_leaving_a_rest_below_min_quantity_sends_less_and_fills_completely():
    # Arrange: venue minimum 0.01 BTC; 0.021 BTC in 3 intervals plans 0.007 each (all below the minimum).
    # Sending the carried 0.014 at t=11 s would leave 0.007 for the last slice (the primary), which the
    # RiskEngine denies (QUANTITY_BELOW_MINIMUM); the order as a whole (0.021) is valid.
    instrument = btcusdt_binance_spot(min_quantity="0.01")
    primary = _vwap({"horizon_secs": 30, "interval_secs": 10}, "0.021", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(60), primaries=[primary], instrument=instrument)

    # Assert: the middle slice sends less (leaving exactly the minimum); every slice is one the venue takes.
    pid = run.primary_ids[0]
    sent = [((ts - T0) // S, o.quantity.as_decimal(), o.status) for ts, o in run.slices(pid)]
    assert sent == [(11, Decimal("0.011"), OrderStatus.FILLED), (21, Decimal("0.010"), OrderStatus.FILLED)]
    assert _filled(run, pid) == Decimal("0.021")
    assert run.orders[pid].status == OrderStatus.FILLED


# -- profile from the cache, or uniform ---------------------------------------------------------------


def test_vwap_without_profile_or_history_slices_uniformly():
    # Arrange: trades only from the submit time on, so the cache cannot reach back one horizon.
    primary = _vwap({"horizon_secs": 30, "interval_secs": 10}, "0.000010", submit_at_ns=T0 + S)
    trades = _trades({k: "0.5" for k in range(1, 40)})

    # Act
    run = run_algorithm_backtest(data=_quotes(50) + trades, primaries=[primary])

    # Assert: 10 increments in 3 slices, the left-over increment to the earliest slice.
    pid = run.primary_ids[0]
    assert _quantities(run.slices(pid)) == [Decimal("0.000004"), Decimal("0.000003"), Decimal("0.000003")]
    assert _filled(run, pid) == Decimal("0.000010")


def test_vwap_with_cached_minute_bars_follows_their_volumes():
    # Arrange: three 1-minute bars (volumes 1, 3, 6 BTC) closing at 60, 120, 180 s; submit at 181 s.
    bars = _minute_bars({60: "1", 120: "3", 180: "6"})
    primary = _vwap({"horizon_secs": 180, "interval_secs": 60}, "1", submit_at_ns=T0 + 181 * S)

    # Act
    run = run_algorithm_backtest(data=_quotes(400) + bars, primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert _quantities(run.slices(pid)) == [Decimal("0.1"), Decimal("0.3"), Decimal("0.6")]


def test_vwap_with_stale_minute_bars_falls_back_to_uniform():
    # Arrange: the same bars as above, but the order arrives 10 minutes after the last one closed.
    bars = _minute_bars({60: "1", 120: "3", 180: "6"})
    primary = _vwap({"horizon_secs": 180, "interval_secs": 60}, "0.9", submit_at_ns=T0 + 780 * S)

    # Act
    run = run_algorithm_backtest(data=_quotes(1000) + bars, primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert _quantities(run.slices(pid)) == [Decimal("0.3")] * 3


def test_vwap_with_cached_trade_ticks_buckets_them_into_intervals():
    # Arrange: over the 30 s before the submit (t0 = 40 s) the tape prints 1, 2 and 1 BTC per 10 s.
    sizes = {k: "0.1" for k in range(5, 10)}  # older prints: the cache reaches back a full horizon
    sizes |= {k: "0.1" for k in range(10, 20)} | {k: "0.2" for k in range(20, 30)} | {k: "0.1" for k in range(30, 40)}
    sizes |= {k: "0.5" for k in range(40, 80)}
    primary = _vwap({"horizon_secs": 30, "interval_secs": 10}, "0.4", submit_at_ns=T0 + 40 * S)

    # Act
    run = run_algorithm_backtest(data=_quotes(90) + _trades(sizes), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert _quantities(run.slices(pid)) == [Decimal("0.1"), Decimal("0.2"), Decimal("0.1")]


# -- participation cap ---------------------------------------------------------------------------------


def _cap_ok(slices, trades, participation: Decimal, interval_s: int) -> list[tuple[Decimal, Decimal]]:
    # (slice size, participation × the prints of the interval before the slice) per slice. The
    # first slice sees the cached prints up to and including t0; later slices the prints received
    # since the previous decision — a print stamped exactly at a timer is processed after it.
    t0 = slices[0][0]
    out = []
    for ts, order in slices:
        if ts == t0:
            window = [t for t in trades if ts - interval_s * S < t.ts_event <= ts]
        else:
            window = [t for t in trades if ts - interval_s * S <= t.ts_event < ts]
        volume = sum((t.size.as_decimal() for t in window), Decimal(0))
        out.append((order.quantity.as_decimal(), participation * volume))
    return out


def test_vwap_participation_cap_limits_slices_and_finishes_after_horizon_with_primary():
    # Arrange: 1 BTC prints per 10 s; 10 % cap = 0.1 BTC per slice; 0.45 BTC planned 0.15 × 3.
    trades = _trades({k: "0.1" for k in range(0, 80)})
    params = nautilus_exec_algorithm_params(
        "VWAP", {"horizon_secs": 30, "interval_secs": 10, "max_participation": "0.1", "volume_profile": ["1", "1", "1"]}
    )
    primary = _vwap(params, "0.45", submit_at_ns=T0 + 10 * S + S // 2)

    # Act
    run = run_algorithm_backtest(data=_quotes(90) + trades, primaries=[primary])

    # Assert: every slice within the cap, the cap bound (0.1 < planned 0.15) ...
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert all(size <= cap for size, cap in _cap_ok(slices, trades, Decimal("0.1"), 10))
    assert _quantities(slices) == [Decimal("0.1")] * 4 + [Decimal("0.05")]
    # ... and the carried remainder was worked after the horizon (t0 + 30 s), the primary last.
    t0 = slices[0][0]
    assert [(ts - t0) // S for ts, _ in slices] == [0, 10, 20, 30, 40]
    assert slices[-1][1].client_order_id.value == pid
    assert run.orders[pid].status == OrderStatus.FILLED
    assert _filled(run, pid) == Decimal("0.45")
    assert run.timers_left == []


def test_vwap_participation_cap_without_enough_volume_cancels_remainder_after_overtime():
    # Arrange: 0.01 BTC prints per 10 s, 50 % cap → 0.005 per slice; 2 overtime intervals allowed.
    trades = _trades({k: "0.001" for k in range(0, 200)})
    algorithm = VWAPExecAlgorithm(VWAPExecAlgorithmConfig(max_overtime_intervals=2))
    params = {"horizon_secs": 30, "interval_secs": 10, "max_participation": "0.5"}
    primary = _vwap(params, "1", submit_at_ns=T0 + 10 * S + S // 2)

    # Act
    run = run_algorithm_backtest(data=_quotes(200) + trades, primaries=[primary], exec_algorithms=[algorithm])

    # Assert: 3 scheduled + 2 overtime slices at the cap, then the primary's remainder canceled.
    pid = run.primary_ids[0]
    children = run.children(pid)
    assert [c.quantity.as_decimal() for c in children] == [Decimal("0.005")] * 5
    assert all(c.status == OrderStatus.FILLED for c in children)
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.event_times(pid, "OrderSubmitted") == []  # the remainder never reached the venue
    t0 = run.event_times(children[0].client_order_id.value, "OrderSubmitted")[0]
    assert run.event_times(pid, "OrderCanceled") == [t0 + 40 * S]
    assert _filled(run, pid) == Decimal("0.025")
    assert run.timers_left == []


@needs_market_data
def test_vwap_participation_cap_on_recorded_binance_trades_stays_within_cap_and_fills():
    # Arrange: 46 s of recorded BTCUSDT quotes and trades (2021-01-08).
    pa = pytest.importorskip("pyarrow.parquet")
    base = "binance_spot_btcusdt_{}_2021-01-08.parquet"
    quote_rows = pa.read_table(MARKET_DATA / base.format("quotes")).to_pylist()
    trade_rows = pa.read_table(MARKET_DATA / base.format("trades")).to_pylist()

    def ns(row):  # millisecond timestamps
        return round(row["timestamp"].timestamp() * 1000) * 1_000_000

    def quote_of(r):
        bid, ask = f"{r['bid']:.2f}", f"{r['ask']:.2f}"
        return quote(INSTRUMENT, ns(r), bid, ask, f"{r['bid_size']:.6f}", f"{r['ask_size']:.6f}")

    def trade_of(r):
        taker_buys = r["buyer_maker"] != "True"  # buyer is the maker → the seller took liquidity
        return trade(INSTRUMENT, ns(r), f"{r['price']:.2f}", f"{r['quantity']:.6f}", str(r["trade_id"]), taker_buys)

    quotes = [quote_of(r) for r in quote_rows]
    trades = [trade_of(r) for r in trade_rows]
    params = {"horizon_secs": 20, "interval_secs": 5, "max_participation": "0.05"}
    primary = _vwap(params, "2", submit_at_ns=quotes[0].ts_event + 5 * S)

    # Act
    run = run_algorithm_backtest(data=quotes + trades, primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    checks = _cap_ok(slices, trades, Decimal("0.05"), 5)
    assert all(size <= cap for size, cap in checks)
    assert any(size < Decimal("0.5") for size, _ in checks)  # the cap bound on the planned 0.5 BTC
    assert sum(_quantities(slices)) == Decimal("2")
    assert run.orders[pid].status == OrderStatus.FILLED
    assert run.timers_left == []


# -- cancel, reject, deny ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bridge_cancels_children", [True, False])
def test_vwap_primary_cancel_cancels_resting_children_and_stops(bridge_cancels_children):
    # Arrange: a LIMIT buy below the market, so its children rest; canceled after two slices.
    primary = _vwap(
        {"horizon_secs": 40, "interval_secs": 10, "volume_profile": "1,1,1,1"},
        "0.4",
        order_type="LIMIT",
        price=Decimal("39000.00"),
        submit_at_ns=T0 + S,
        cancel_at_ns=T0 + 15 * S,
        cancel_children=bridge_cancels_children,
    )

    # Act
    run = run_algorithm_backtest(data=_quotes(60), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    children = run.children(pid)
    assert len(children) == 2  # no slice after the cancel
    assert all(c.status == OrderStatus.CANCELED for c in children)
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.timers_left == []


def test_vwap_child_denied_by_risk_aborts_and_cancels_primary_remainder():
    # Arrange: the node's risk limit (20 000 USDT per order) denies the 0.6 BTC second slice.
    primary = _vwap({"horizon_secs": 30, "interval_secs": 10, "volume_profile": "1,6,3"}, "1", submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(
        data=_quotes(50), primaries=[primary], max_notional_per_order={"BTCUSDT.BINANCE": 20_000}
    )

    # Assert
    pid = run.primary_ids[0]
    first, second = run.children(pid)
    assert first.status == OrderStatus.FILLED
    assert second.status == OrderStatus.DENIED
    assert run.orders[pid].status == OrderStatus.CANCELED
    assert run.event_times(pid, "OrderSubmitted") == []
    assert run.timers_left == []


@pytest.mark.parametrize(
    "params, order_type, tif, named",
    [
        ({"horizon_secs": 30, "interval_secs": 10, "volume_profile": "1,1"}, "MARKET", "GTC", "volume_profile"),
        ({"horizon_secs": 30, "interval_secs": 10, "volume_profile": "0,0,0"}, "MARKET", "GTC", "volume_profile"),
        ({"horizon_secs": 30, "interval_secs": 10, "max_participation": "1.5"}, "MARKET", "GTC", "max_participation"),
        ({"horizon_secs": 10, "interval_secs": 30}, "MARKET", "GTC", "interval_secs"),
        ({"interval_secs": 10}, "MARKET", "GTC", "horizon_secs"),
        ({"horizon_secs": 30, "interval_secs": 10}, "LIMIT", "IOC", "IOC"),
    ],
)
def test_vwap_unworkable_primary_is_denied_with_reason(params, order_type, tif, named):
    # Arrange
    price = Decimal("40000.00") if order_type == "LIMIT" else None
    primary = _vwap(params, "1", order_type=order_type, price=price, time_in_force=tif, submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(20), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert run.orders[pid].status == OrderStatus.DENIED
    (denied,) = [e for _, e in run.events if type(e).__name__ == "OrderDenied"]
    assert named in denied.reason
    assert run.children(pid) == []


def test_vwap_and_iceberg_run_side_by_side_on_separate_ids():
    # Arrange: both algorithms on one node, each working its own primary.
    vwap = _vwap({"horizon_secs": 20, "interval_secs": 10}, "0.2", submit_at_ns=T0 + S)
    iceberg = PrimaryOrder(
        "ICEBERG",
        {"display_qty": "0.5"},
        Decimal("0.4"),
        order_type="LIMIT",
        price=Decimal("40000.01"),
        submit_at_ns=T0 + S,
    )

    # Act
    run = run_algorithm_backtest(
        data=_quotes(40), primaries=[vwap, iceberg], exec_algorithms=[VWAPExecAlgorithm(), IcebergExecAlgorithm()]
    )

    # Assert
    vwap_id, iceberg_id = run.primary_ids
    assert _quantities(run.slices(vwap_id)) == [Decimal("0.1"), Decimal("0.1")]
    assert run.orders[vwap_id].status == OrderStatus.FILLED
    assert run.orders[iceberg_id].status == OrderStatus.FILLED



def test_vwap_profile_slice_above_the_venue_max_quantity_is_split_into_children_within_it():
    # Arrange: a profile derived on the node (bars of 1, 3, 6 BTC: slices 0.1, 0.3, 0.6 of 1 BTC), which
    # pre-trade risk cannot see at submit; the venue's maximum order size is 0.25 BTC.
    instrument = btcusdt_binance_spot(max_quantity="0.25")
    bars = _minute_bars({60: "1", 120: "3", 180: "6"})
    primary = _vwap({"horizon_secs": 180, "interval_secs": 60}, "1", submit_at_ns=T0 + 181 * S)

    # Act
    run = run_algorithm_backtest(data=_quotes(400) + bars, primaries=[primary], instrument=instrument)

    # Assert: every order within 0.25 BTC, none denied; the profile's 0.1 / 0.3 / 0.6 per interval is kept.
    pid = run.primary_ids[0]
    slices = run.slices(pid)
    assert [e for _, e in run.events if type(e).__name__ == "OrderDenied"] == []
    assert all(o.quantity.as_decimal() <= Decimal("0.25") for _, o in slices)
    per_interval: dict[int, Decimal] = {}
    for t, o in slices:
        per_interval[(t - T0) // S] = per_interval.get((t - T0) // S, Decimal(0)) + o.quantity.as_decimal()
    assert list(per_interval.values()) == [Decimal("0.1"), Decimal("0.3"), Decimal("0.6")]
    assert run.orders[pid].status == OrderStatus.FILLED
    assert _filled(run, pid) == Decimal("1")
