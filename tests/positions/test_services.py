"""positions.services: the only writer of Position rows (apply a fill, mark to market)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from positions.maths import PositionMathsError, PositionState, apply_fill
from positions.models import Position
from positions.services import position_apply_fill, position_mark
from tests.helpers import position_row_held, run_concurrently
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory
from tests.venues.factories import InstrumentFactory, VenueFactory, listing_of

D = Decimal
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
T0 = timezone.now().replace(microsecond=0)


def apply(strategy_id, side, quantity, price, fee="0", *, key=SPOT, venue="BINANCE-SPOT", ts=T0, **kwargs):
    return position_apply_fill(strategy_id=strategy_id, venue=venue, instrument_key=key, side=side,
                               quantity=D(quantity), price=D(price), fee=D(fee), ts=ts, **kwargs)


@pytest.fixture
def strategy(db):
    return StrategyFactory(id="s-pos")


@pytest.fixture
def spot_listing():
    """SPOT's listing (linear, multiplier 1): a mark needs the listing's contract terms."""
    return listing_of(SPOT)


@pytest.mark.django_db
def test_position_apply_fill_new_listing_creates_row(strategy):
    # Act
    with transaction.atomic():
        position = apply(strategy.id, "BUY", "0.5", "40000", "2")

    # Assert
    row = Position.objects.get()
    assert row.pk == position.pk
    assert (row.strategy_id, row.venue, row.instrument_key, row.equivalence_key) == (
        "s-pos", "BINANCE-SPOT", SPOT, "SPOT_PAIR:BTC-USDT")
    assert (row.quantity, row.avg_entry_price, row.realized_pnl, row.fees) == (D("0.5"), D(40000), D(-2), D(2))
    assert (row.mark_price, row.unrealized_pnl, row.marked_at) == (None, D(0), None)


@pytest.mark.django_db
def test_position_apply_fill_existing_row_nets_and_realizes(strategy):
    # Arrange
    with transaction.atomic():
        apply(strategy.id, "BUY", "1", "100", "0.1")
        apply(strategy.id, "BUY", "1", "120", "0.1")

    # Act: avg 110; sell 1.5 @ 130 -> (130 - 110) · 1.5 = 30
    with transaction.atomic():
        apply(strategy.id, "SELL", "1.5", "130", "0.3")

    # Assert
    row = Position.objects.get()
    assert (row.quantity, row.avg_entry_price, row.realized_pnl, row.fees) == (D("0.5"), D(110), D("29.5"), D("0.5"))


@pytest.mark.django_db
def test_position_apply_fill_strategies_and_venues_get_separate_rows(strategy):
    # Arrange
    other = StrategyFactory(id="s-other")

    # Act
    with transaction.atomic():
        apply(strategy.id, "BUY", "1", "100")
        apply(other.id, "SELL", "2", "100")
        apply(strategy.id, "BUY", "3", "100", key="OKX:SPOT_PAIR:BTC-USDT", venue="OKX")

    # Assert
    assert sorted(Position.objects.values_list("strategy_id", "venue", "quantity")) == [
        ("s-other", "BINANCE-SPOT", D(-2)), ("s-pos", "BINANCE-SPOT", D(1)), ("s-pos", "OKX", D(3))]


@pytest.mark.django_db
def test_position_apply_fill_marked_position_recomputes_unrealized_from_stored_mark(strategy, spot_listing):
    # Arrange
    with transaction.atomic():
        apply(strategy.id, "BUY", "1", "100")
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(150), ts=T0)

    # Act: long 3 @ 110 (re-averaged), mark still 150 -> 3 · 40 = 120
    with transaction.atomic():
        apply(strategy.id, "BUY", "2", "115")

    # Assert
    row = Position.objects.get()
    assert (row.quantity, row.avg_entry_price, row.mark_price, row.unrealized_pnl) == (D(3), D(110), D(150), D(120))


@pytest.mark.django_db
def test_position_apply_fill_inverse_listing_realizes_in_base_currency(strategy):
    # Arrange: Deribit BTC-PERPETUAL, 10 USD per contract
    with transaction.atomic():
        apply(strategy.id, "SELL", "100", "50000", key=INV, venue="DERIBIT", multiplier=D(10), inverse=True)

    # Act: -100 · 10 · (1/50000 - 1/40000) = 0.005 BTC, fee 0.0001 BTC
    with transaction.atomic():
        apply(strategy.id, "BUY", "100", "40000", "0.0001", key=INV, venue="DERIBIT", multiplier=D(10), inverse=True)

    # Assert
    row = Position.objects.get()
    assert (row.quantity, row.avg_entry_price, row.realized_pnl, row.equivalence_key) == (
        D(0), None, D("0.0049"), "PERPETUAL:BTC-USD@INV")


@pytest.mark.django_db(transaction=True)
def test_position_apply_fill_outside_transaction_raises_and_writes_nothing():
    # Arrange
    strategy = StrategyFactory(id="s-autocommit")

    # Act / Assert
    with pytest.raises(transaction.TransactionManagementError, match="inside the caller's transaction"):
        apply(strategy.id, "BUY", "1", "100")
    assert not Position.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"quantity": "0"}, PositionMathsError, "^quantity: must be > 0"),
        ({"fee": "NaN"}, PositionMathsError, "^fee: "),
        ({"side": "HOLD"}, PositionMathsError, "^side: unknown side"),
        ({"venue": "OKX"}, ValueError, "^venue: 'OKX' differs"),
        ({"key": "ANY:SPOT_PAIR:BTC-USDT", "venue": "ANY"}, ValueError, "is an ANY key"),
        ({"key": "BINANCE-SPOT:SPOT_PAIR:BTCUSDT"}, ValueError, "^payload"),
        ({"key": INV, "venue": "DERIBIT"}, ValueError, "^inverse: False contradicts"),
        ({"key": "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", "venue": "BINANCE-FUTURES", "inverse": True},
         ValueError, "^inverse: True contradicts"),
        ({"ts": T0.replace(tzinfo=None)}, ValueError, "^ts: must be timezone-aware"),
    ],
)
def test_position_apply_fill_invalid_input_raises_naming_field_and_writes_nothing(strategy, overrides, error, match):
    # Arrange
    kwargs = {"side": "BUY", "quantity": "1", "price": "100", "fee": "0", **overrides}

    # Act / Assert
    with pytest.raises(error, match=match), transaction.atomic():
        apply(strategy.id, kwargs.pop("side"), kwargs.pop("quantity"), kwargs.pop("price"), kwargs.pop("fee"),
              **kwargs)
    assert not Position.objects.exists()


@pytest.mark.django_db
def test_position_apply_fill_other_fee_is_kept_in_its_currency_apart_from_fees_and_pnl(strategy):
    # Act: a fill paying 0.4 USDT, then two paying BNB
    with transaction.atomic():
        apply(strategy.id, "BUY", "1", "100", "0.4")
        apply(strategy.id, "BUY", "1", "100", other_fee=D("0.001"), other_fee_currency="BNB")
        apply(strategy.id, "SELL", "1", "110", other_fee=D("0.0015"), other_fee_currency="BNB")

    # Assert: realized 10 − 0.4 USDT; the BNB is neither subtracted nor lost
    row = Position.objects.get()
    assert (row.quantity, row.realized_pnl, row.fees) == (D(1), D("9.6"), D("0.4"))
    assert row.other_fees == {"BNB": "0.0025"}


@pytest.mark.django_db
def test_position_apply_fill_other_fee_without_currency_raises_and_writes_nothing(strategy):
    # Act / Assert
    with pytest.raises(PositionMathsError) as caught, transaction.atomic():
        apply(strategy.id, "BUY", "1", "100", other_fee=D("0.001"))
    assert caught.value.field == "fee_currency"
    assert not Position.objects.exists()


@pytest.mark.django_db
def test_position_apply_fill_unknown_strategy_raises_naming_strategy(db):
    # Act / Assert
    with pytest.raises(ValueError, match="^strategy_id: unknown strategy 'nope'"), transaction.atomic():
        apply("nope", "BUY", "1", "100")
    assert not Position.objects.exists()


@pytest.mark.django_db
def test_position_apply_fill_inconsistent_stored_row_raises_instead_of_guessing(strategy):
    # Arrange: a flat row that still carries an entry price (never written by the service)
    PositionFactory(strategy=strategy, quantity=D(0), avg_entry_price=D(100))

    # Act / Assert
    with pytest.raises(PositionMathsError, match="^state: stored position .* inconsistent"), transaction.atomic():
        apply(strategy.id, "BUY", "1", "100")


# --- marks ---------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_position_mark_every_strategy_in_listing_updates_mark_and_unrealized(strategy, spot_listing):
    # Arrange
    other = StrategyFactory(id="s-other")
    with transaction.atomic():
        apply(strategy.id, "BUY", "2", "100")
        apply(other.id, "SELL", "3", "120")
        apply(strategy.id, "BUY", "1", "100", key="OKX:SPOT_PAIR:BTC-USDT", venue="OKX")

    # Act
    updated = position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(110), ts=T0)

    # Assert
    assert updated == 2
    rows = {p.strategy_id: p for p in Position.objects.filter(venue="BINANCE-SPOT")}
    assert (rows["s-pos"].mark_price, rows["s-pos"].unrealized_pnl, rows["s-pos"].marked_at) == (D(110), D(20), T0)
    assert (rows["s-other"].mark_price, rows["s-other"].unrealized_pnl) == (D(110), D(30))
    okx = Position.objects.get(venue="OKX")
    assert (okx.mark_price, okx.unrealized_pnl, okx.marked_at) == (None, D(0), None)


@pytest.mark.django_db
def test_position_mark_older_than_stored_mark_is_ignored(strategy, spot_listing):
    # Arrange
    with transaction.atomic():
        apply(strategy.id, "BUY", "1", "100")
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(110), ts=T0)

    # Act
    updated = position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(90), ts=T0 - timedelta(seconds=1))

    # Assert
    assert updated == 0
    row = Position.objects.get()
    assert (row.mark_price, row.unrealized_pnl, row.marked_at) == (D(110), D(10), T0)


@pytest.mark.django_db
def test_position_mark_inverse_listing_uses_instrument_multiplier(strategy):
    # Arrange: the listing says 10 USD per contract, inverse
    InstrumentFactory(venue=VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit"),
                      instrument_key=INV, venue_symbol="BTC-PERPETUAL", contract_multiplier=D(10), is_inverse=True,
                      tick_size=D("0.5"), lot_size=D(1))
    with transaction.atomic():
        apply(strategy.id, "SELL", "100", "50000", key=INV, venue="DERIBIT", multiplier=D(10), inverse=True)

    # Act: -100 · 10 · (1/50000 - 1/40000) = 0.005 BTC
    updated = position_mark(instrument_key=INV, venue="DERIBIT", mark_price=D(40000), ts=T0)

    # Assert
    assert updated == 1
    assert Position.objects.get().unrealized_pnl == D("0.005")


@pytest.mark.django_db
def test_position_mark_inverse_key_without_listing_raises(strategy):
    # Arrange: a position of an inverse listing that no longer exists (its face value is unknown)
    PositionFactory(strategy=strategy, venue="DERIBIT", instrument_key=INV, equivalence_key=INV.split(":", 1)[1],
                    quantity=D(10), avg_entry_price=D(40000))

    # Act / Assert
    with pytest.raises(ValueError, match="^instrument_key: .* no venues.Instrument listing"):
        position_mark(instrument_key=INV, venue="DERIBIT", mark_price=D(40000), ts=T0)


@pytest.mark.django_db
def test_position_mark_linear_key_without_listing_raises_and_leaves_the_row(strategy):
    # Arrange: a linear position whose listing no longer exists (its contract size is unknown:
    # 1 ETH on one venue, 0.01 BTC per contract on OKX)
    key = "BYBIT:PERPETUAL:ETH-USDT@LIN"
    with transaction.atomic():
        apply(strategy.id, "BUY", "4", "2000", key=key, venue="BYBIT")

    # Act / Assert
    with pytest.raises(ValueError, match="^instrument_key: .* no venues.Instrument listing; .* multiplier .* unknown"):
        position_mark(instrument_key=key, venue="BYBIT", mark_price=D("2000.5"), ts=T0)
    row = Position.objects.get()
    assert (row.mark_price, row.unrealized_pnl, row.marked_at) == (None, D(0), None)


@pytest.mark.django_db
def test_position_mark_no_positions_returns_zero(db, spot_listing):
    # Act / Assert
    assert position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(1), ts=T0) == 0


@pytest.mark.django_db
def test_position_mark_key_without_listing_or_positions_returns_zero(db):
    # A quote for a key nobody holds needs no contract size: nothing to mark, nothing wrong (the
    # publisher would otherwise log an error every mark interval for an unlisted key).
    assert position_mark(instrument_key="BYBIT:PERPETUAL:ETH-USDT@LIN", venue="BYBIT", mark_price=D(1), ts=T0) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mark_price": D(0)}, "^mark: must be > 0"),
        ({"mark_price": 100.0}, "^mark: must be a Decimal"),
        ({"ts": T0.replace(tzinfo=None)}, "^ts: must be timezone-aware"),
        ({"venue": "OKX"}, "^venue: 'OKX' differs"),
    ],
)
def test_position_mark_invalid_input_raises_naming_field(strategy, spot_listing, kwargs, match):
    # Arrange
    arguments = {"instrument_key": SPOT, "venue": "BINANCE-SPOT", "mark_price": D(100), "ts": T0, **kwargs}

    # Act / Assert
    with pytest.raises(ValueError, match=match):
        position_mark(**arguments)


# --- concurrency (PostgreSQL, real commits) ------------------------------------------------------

THREADS = 16
ROUNDS = 4


def thread_fills(i, r):
    # Each transaction adds 3 @ 100 then sells 1 @ 100 + i + r: the entry price stays 100 whatever
    # the interleaving, so the sequential result does not depend on the order of transactions.
    return [("BUY", D(3), D(100), D("0.03")), ("SELL", D(1), D(100 + i + r), D("0.01"))]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_position_apply_fill_concurrent_fills_on_new_position_equal_sequential_result():
    # Arrange
    StrategyFactory(id="s-race")
    expected = PositionState()
    for i in range(THREADS):
        for r in range(ROUNDS):
            for side, quantity, price, fee in thread_fills(i, r):
                expected = apply_fill(expected, side=side, quantity=quantity, price=price, fee=fee)

    def work(i):
        for r in range(ROUNDS):
            with transaction.atomic():
                for side, quantity, price, fee in thread_fills(i, r):
                    position_apply_fill(strategy_id="s-race", venue="BINANCE-SPOT", instrument_key=SPOT, side=side,
                                        quantity=quantity, price=price, fee=fee, ts=timezone.now())

    # Act
    _, errors = run_concurrently(THREADS, work)

    # Assert
    assert not [e for e in errors if isinstance(e, IntegrityError)], errors
    assert not errors, errors
    row = Position.objects.get()
    assert (row.quantity, row.avg_entry_price, row.realized_pnl, row.fees) == (
        expected.quantity, expected.avg_entry_price, expected.realized_pnl, expected.fees)
    assert row.quantity == THREADS * ROUNDS * 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_position_apply_fill_locks_the_position_row_not_its_strategy():
    # Regression: the compiled locked read kept Position's default ordering, whose join to
    # orders_strategy made FOR UPDATE lock the strategy row too; every order insert's foreign-key
    # check (FOR KEY SHARE on that row) then waited for the fill, and a TWAP storm deadlocked.
    import psycopg
    from django.db import connection

    # Arrange: an existing position, and a second connection as another request would hold.
    StrategyFactory(id="s-lock")
    with transaction.atomic():
        apply("s-lock", "BUY", "1", "100")
    params = connection.get_connection_params()
    other = psycopg.connect(**{k: v for k, v in params.items() if k in {"host", "port", "user", "password", "dbname"}},
                            autocommit=True)
    try:
        with transaction.atomic():
            # Act: the next fill holds its locks until commit.
            apply("s-lock", "BUY", "1", "101")

            # Assert: the strategy row is free for a foreign-key check; the position row is not.
            other.execute("SELECT 1 FROM orders_strategy WHERE id = %s FOR KEY SHARE NOWAIT", ["s-lock"])
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM positions_position WHERE strategy_id = %s FOR UPDATE NOWAIT", ["s-lock"])
    finally:
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_position_mark_skips_a_position_a_fill_holds_locked(spot_listing):
    # A mark never waits for the journal's fill (which holds the row until it commits): the row is
    # left for the next mark. Were the mark to wait, it would mark the row once the holder gives up
    # (after 5 s) and count it.
    # Arrange: two strategies' positions in one listing; a fill holds the first one's row.
    StrategyFactory(id="s-held")
    StrategyFactory(id="s-free")
    with transaction.atomic():
        apply("s-held", "BUY", "1", "100")
        apply("s-free", "BUY", "2", "100")

    # Act
    with position_row_held(strategy_id="s-held"):
        marked = position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(110), ts=T0)

    # Assert
    assert marked == 1
    assert Position.objects.get(strategy_id="s-free").mark_price == D(110)
    assert Position.objects.get(strategy_id="s-held").mark_price is None
