"""positions.selectors: positions aggregated by canonical instrument across venues."""

from decimal import Decimal

import pytest

from positions.selectors import position_aggregates, position_book
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory
from tests.venues.factories import InstrumentFactory, VenueFactory

D = Decimal
INV = "PERPETUAL:BTC-USD@INV"
LIN = "PERPETUAL:BTC-USDT@LIN"


@pytest.mark.django_db
def test_position_aggregates_single_inverse_position_reports_its_stored_avg_entry_price():
    # Arrange: one inverse position whose entry price 1/p does not fit 28 digits
    PositionFactory(strategy=StrategyFactory(id="s-inv"), venue="DERIBIT", instrument_key=f"DERIBIT:{INV}",
                    equivalence_key=INV, quantity=D("244"), avg_entry_price=D("58354.36"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: the stored price, not 58354.36000000000000000000001
    assert agg.venues[0].avg_entry_price == D("58354.36")
    assert str(agg.venues[0].avg_entry_price.normalize()) == "58354.36"
    assert agg.avg_entry_price == D("58354.36")


@pytest.mark.django_db
def test_position_aggregates_avg_entry_price_across_venues_has_at_most_18_decimal_places():
    # Arrange: 2 at 40000 and 1 at 41000: 40333.33… recurring
    strategy = StrategyFactory(id="s-lin")
    for venue, quantity, price in (("BINANCE-FUTURES", "2", "40000"), ("BYBIT", "1", "41000")):
        _perp(venue, LIN, "1")
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D(quantity), avg_entry_price=D(price))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: quantized as positions.maths quantizes (NUMERIC(36,18), half-even)
    assert agg.avg_entry_price == D("40333.333333333333333333")
    assert agg.avg_entry_price.as_tuple().exponent >= -18


@pytest.mark.django_db
def test_position_aggregates_inverse_option_without_suffix_averages_harmonically_as_its_listing_says():
    # Arrange: an inverse (coin-settled) Deribit option keyed without @INV (the suffix is optional for
    # options); two strategies hold 1 contract each, entered at 40000 and 60000
    key = "DERIBIT:OPTION:BTC-USD-50000-20241231-C"
    InstrumentFactory(venue=VenueFactory(code="DERIBIT", adapter="deribit"), instrument_key=key,
                      venue_symbol="BTC-31DEC24-50000-C", quote_currency="USD", settlement_currency="BTC",
                      is_inverse=True, contract_multiplier=D("1"))
    for sid, price in (("s-a", "40000"), ("s-b", "60000")):
        PositionFactory(strategy=StrategyFactory(id=sid), venue="DERIBIT", instrument_key=key,
                        equivalence_key="OPTION:BTC-USD-50000-20241231-C", quantity=D("1"), avg_entry_price=D(price))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: the harmonic mean positions.maths uses for this listing (2 / (1/40000 + 1/60000)), not 50000
    assert agg.venues[0].avg_entry_price == D("48000")
    assert agg.avg_entry_price == D("48000")


@pytest.mark.django_db
def test_position_aggregates_option_legs_of_mixed_settlement_have_no_common_entry_price():
    # Arrange: the same option key payload on two venues, one listing inverse, the other linear
    eq = "OPTION:BTC-USD-50000-20241231-C"
    strategy = StrategyFactory(id="s-mix")
    for venue, inverse, price in (("DERIBIT", True, "40000"), ("OKX", False, "60000")):
        InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{eq}",
                          quote_currency="USD", is_inverse=inverse, contract_multiplier=D("1"))
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{eq}", equivalence_key=eq,
                        quantity=D("1"), avg_entry_price=D(price))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: neither the arithmetic nor the harmonic mean describes both legs
    assert [vp.avg_entry_price for vp in agg.venues] == [D("40000"), D("60000")]
    assert agg.avg_entry_price is None


def _perp(venue: str, key: str, multiplier: str, *, inverse: bool = False):
    return InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{key}",
                             quote_currency=key.split("-")[-1].split("@")[0], contract_multiplier=D(multiplier),
                             is_inverse=inverse)


@pytest.mark.django_db
def test_position_aggregates_sums_venues_in_base_units_and_keeps_listing_rows_in_contracts():
    # Arrange: 100 OKX contracts of 0.01 BTC at 40000 and 1 Binance contract of 1 BTC at 50000, short 0.5 BTC on Bybit
    strategy = StrategyFactory(id="s-lin")
    for venue, multiplier, quantity, price in (("BINANCE-FUTURES", "1", "1", "50000"), ("OKX", "0.01", "100", "40000"),
                                               ("BYBIT", "1", "-0.5", "45000")):
        _perp(venue, LIN, multiplier)
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D(quantity), avg_entry_price=D(price))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: 1 + 1 - 0.5 BTC, not 100.5 contracts; each listing in its own contracts
    assert (agg.quantity, agg.gross_quantity, agg.base_unit) == (D("1.5"), D("2.5"), "BTC")
    assert [vp.quantity for vp in agg.venues] == [D("1"), D("-0.5"), D("100")]


@pytest.mark.django_db
def test_position_aggregates_avg_entry_across_venues_weighs_base_units_not_contracts():
    # Arrange: 1 BTC at 40000 on OKX (100 contracts), 1 BTC at 50000 on Binance (1 contract)
    strategy = StrategyFactory(id="s-lin")
    for venue, multiplier, quantity, price in (("BINANCE-FUTURES", "1", "1", "50000"), ("OKX", "0.01", "100", "40000")):
        _perp(venue, LIN, multiplier)
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D(quantity), avg_entry_price=D(price))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert
    assert agg.avg_entry_price == D("45000")


@pytest.mark.django_db
def test_position_aggregates_inverse_contracts_count_their_face_value_at_the_mark_in_base_units():
    # Arrange: 1000 Deribit contracts of 10 USD marked at 40000; 100 Binance COIN-M contracts of 100 USD,
    # never marked, entered at 50000
    strategy = StrategyFactory(id="s-inv")
    for venue, multiplier, quantity, entry, mark in (("DERIBIT", "10", "1000", "40000", "40000"),
                                                     ("BINANCE-FUTURES", "100", "100", "50000", None)):
        _perp(venue, INV, multiplier, inverse=True)
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{INV}", equivalence_key=INV,
                        quantity=D(quantity), avg_entry_price=D(entry), mark_price=D(mark) if mark else None)

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: 10000 USD / 40000 + 10000 USD / 50000 = 0.45 BTC; the entry price is the face-weighted harmonic mean
    assert agg.quantity == D("0.45")
    assert agg.avg_entry_price == D("44444.444444444444444444")


@pytest.mark.django_db
def test_position_aggregates_inverse_contracts_without_listing_leave_the_quantity_unknown():
    # Arrange: an inverse position whose face value nobody knows (no venues.Instrument row)
    PositionFactory(strategy=StrategyFactory(id="s-inv"), venue="DERIBIT", instrument_key=f"DERIBIT:{INV}",
                    equivalence_key=INV, quantity=D("10"), avg_entry_price=D("40000"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert
    assert agg.venues[0].quantity == D("10")
    assert agg.quantity is None
    assert agg.gross_quantity is None
    assert agg.quantity_problem == (f"DERIBIT:{INV}: its listing no longer exists (no venues.Instrument), so its "
                                    f"contract size is unknown")


def _mixed_settlement_option(strategy):
    # The same option on Deribit (inverse, settled in BTC) and OKX (linear, settled in USD).
    eq = "OPTION:BTC-USD-50000-20241231-C"
    for venue, inverse, settles, realized, unrealized, fees in (
            ("DERIBIT", True, "BTC", "0.01", "0.002", "0.0001"), ("OKX", False, "USD", "100", "20", "1.5")):
        InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{eq}",
                          quote_currency="USD", settlement_currency=settles, is_inverse=inverse,
                          contract_multiplier=D("1"))
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{eq}", equivalence_key=eq,
                        quantity=D("1"), avg_entry_price=D("0.05") if inverse else D("2000"),
                        realized_pnl=D(realized), unrealized_pnl=D(unrealized), fees=D(fees))
    return eq


@pytest.mark.django_db
def test_position_aggregates_pnl_of_listings_settling_in_different_currencies_has_no_total():
    # Arrange
    _mixed_settlement_option(StrategyFactory(id="s-mix"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: BTC and USD are never added; each listing keeps its own
    assert (agg.realized_pnl, agg.unrealized_pnl, agg.fees) == (None, None, None)
    assert (agg.pnl_currency, agg.pnl_currencies) == ("", ["BTC", "USD"])
    assert [(vp.pnl_currency, vp.realized_pnl) for vp in agg.venues] == [("BTC", D("0.01")), ("USD", D("100"))]


@pytest.mark.django_db
def test_position_aggregates_pnl_total_of_one_currency_states_it():
    # Arrange: two linear USDT listings
    strategy = StrategyFactory(id="s-one")
    for venue, realized in (("BINANCE-FUTURES", "10"), ("OKX", "2.5")):
        _perp(venue, LIN, "1")
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D("1"), avg_entry_price=D("40000"), realized_pnl=D(realized))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert
    assert (agg.realized_pnl, agg.pnl_currency, agg.pnl_currencies) == (D("12.5"), "USDT", ["USDT"])


def _wide_book(strategy_a, strategy_b):
    # One OKX listing of 0.01 BTC contracts: figures whose exact sums and products need more than the
    # default 28 digits, from stored values of at most 15 significant digits (SQLite keeps no more).
    _perp("OKX", LIN, "0.01")
    for strategy, quantity, realized in ((strategy_a, "10000000000", "1000000000000"),
                                         (strategy_b, "0.000000000000000001", "0.000000000000000001")):
        PositionFactory(strategy=strategy, venue="OKX", instrument_key=f"OKX:{LIN}", equivalence_key=LIN,
                        quantity=D(quantity), avg_entry_price=D("40000"), mark_price=D("40000.5"),
                        realized_pnl=D(realized))


@pytest.mark.django_db
def test_position_aggregates_sums_and_base_units_are_exact_beyond_28_digits():
    # Arrange
    _wide_book(StrategyFactory(id="s-a"), StrategyFactory(id="s-b"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: exact, not rounded to 28 significant digits (10000000000.00000000000000000 …)
    (vp,) = agg.venues
    assert vp.quantity == D("10000000000.000000000000000001")
    assert vp.realized_pnl == D("1000000000000.000000000000000001")
    assert agg.quantity == agg.gross_quantity == D("100000000.00000000000000000001")
    assert agg.realized_pnl == D("1000000000000.000000000000000001")


@pytest.mark.django_db
def test_position_book_notionals_and_totals_are_exact_beyond_28_digits():
    # Arrange
    _wide_book(StrategyFactory(id="s-a"), StrategyFactory(id="s-b"))

    # Act
    book = position_book(strategy_ids=None)

    # Assert: |quantity| × mark × multiplier = 10000000000.000000000000000001 × 40000.5 × 0.01, exactly
    (agg,) = book.instruments
    assert agg.venues[0].notional == agg.notional == D("4000050000000.000000000000000400005")
    (usdt,) = book.totals
    assert (usdt.notional, usdt.realized_pnl) == (D("4000050000000.000000000000000400005"),
                                                  D("1000000000000.000000000000000001"))
    assert usdt.equity == D("1000000000000.000000000000000001")


@pytest.mark.django_db
def test_position_book_reads_positions_once_and_listings_once(django_assert_num_queries):
    # Arrange: two listings of one instrument
    strategy = StrategyFactory(id="s-q")
    for venue in ("BINANCE-FUTURES", "OKX"):
        _perp(venue, LIN, "1")
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D("1"), avg_entry_price=D("40000"))

    # Act / Assert: the positions, then their listings' terms (venues.Instrument): two queries
    with django_assert_num_queries(2):
        book = position_book(strategy_ids=None)
    assert book.instruments[0].notional == D("80000")


def _okx_unlisted(strategy):
    # 1 Binance contract of 1 BTC (listed) and 100 OKX contracts whose listing (0.01 BTC each) was removed.
    _perp("BINANCE-FUTURES", LIN, "1")
    for venue, quantity in (("BINANCE-FUTURES", "1"), ("OKX", "100")):
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D(quantity), avg_entry_price=D("40000"))


@pytest.mark.django_db
def test_position_aggregates_linear_contracts_without_listing_leave_the_quantity_unknown_naming_it():
    # Arrange
    _okx_unlisted(StrategyFactory(id="s-lin"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: not 1 + 100 × 1 = 101 BTC; the listing lines keep their contracts
    assert (agg.quantity, agg.gross_quantity) == (None, None)
    assert agg.quantity_problem == (f"OKX:{LIN}: its listing no longer exists (no venues.Instrument), so its "
                                    f"contract size is unknown")
    assert [vp.quantity for vp in agg.venues] == [D("1"), D("100")]
    assert agg.avg_entry_price is None  # the legs cannot be weighed in base units


@pytest.mark.django_db
def test_position_book_linear_contracts_without_listing_have_no_notional():
    # Arrange
    _okx_unlisted(StrategyFactory(id="s-lin"))

    # Act
    book = position_book(strategy_ids=None)

    # Assert: not 100 × 40000 × 1; left out of the totals and listed as unpriced
    (agg,) = book.instruments
    assert [vp.notional for vp in agg.venues] == [D("40000"), None]
    assert agg.notional is None
    assert book.unpriced == [f"OKX:{LIN}"]
    assert [(t.currency, t.notional) for t in book.totals] == [("USDT", D("40000"))]


@pytest.mark.django_db
def test_position_aggregates_listed_quantity_has_no_problem():
    # Arrange
    _perp("OKX", LIN, "0.01")
    PositionFactory(strategy=StrategyFactory(id="s-lin"), venue="OKX", instrument_key=f"OKX:{LIN}",
                    equivalence_key=LIN, quantity=D("100"), avg_entry_price=D("40000"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert
    assert (agg.quantity, agg.quantity_problem) == (D("1"), "")


@pytest.mark.django_db
def test_position_aggregates_and_book_sum_other_fees_per_currency_never_into_fees():
    # Arrange: BNB and OKB fees on two venues of one instrument, two strategies on one of them
    alpha, beta = StrategyFactory(id="s-a"), StrategyFactory(id="s-b")
    for venue in ("BINANCE-FUTURES", "OKX"):
        _perp(venue, LIN, "1")
    PositionFactory(strategy=alpha, venue="BINANCE-FUTURES", instrument_key=f"BINANCE-FUTURES:{LIN}",
                    equivalence_key=LIN, quantity=D(1), avg_entry_price=D(40000), fees=D("0.4"),
                    other_fees={"BNB": "0.001"})
    PositionFactory(strategy=beta, venue="BINANCE-FUTURES", instrument_key=f"BINANCE-FUTURES:{LIN}",
                    equivalence_key=LIN, quantity=D(1), avg_entry_price=D(40000),
                    other_fees={"BNB": "0.000000000000000002"})
    PositionFactory(strategy=alpha, venue="OKX", instrument_key=f"OKX:{LIN}", equivalence_key=LIN, quantity=D(1),
                    avg_entry_price=D(40000), fees=D("0.1"), other_fees={"OKB": "0.5", "BNB": "1"})

    # Act
    (agg,) = position_aggregates(strategy_ids=None)
    book = position_book(strategy_ids=None)
    (alpha_agg,) = position_aggregates(strategy_ids=["s-a"])

    # Assert: per currency, exact; the PnL currency's fees unchanged
    binance, okx = agg.venues
    assert binance.other_fees == {"BNB": D("0.001000000000000002")}
    assert okx.other_fees == {"BNB": D(1), "OKB": D("0.5")}
    assert agg.other_fees == {"BNB": D("1.001000000000000002"), "OKB": D("0.5")}
    assert agg.fees == D("0.5")
    assert book.other_fees == agg.other_fees
    assert [t.fees for t in book.totals] == [D("0.5")]
    assert alpha_agg.other_fees == {"BNB": D("1.001"), "OKB": D("0.5")}
