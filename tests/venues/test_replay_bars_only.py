"""Bars-only recordings (the paper BINANCE-FUTURES venue): prices onto the tick, quotes from bars, plan, seed."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from nautilus_trader.model.data import Bar, BarType, QuoteTick

from odum_live.instruments import parse_instrument_key
from tests.helpers import SHARED_DATA, needs_market_data
from tests.venues.factories import InstrumentFactory, VenueFactory
from tests.venues.test_replay_client import BTCUSDT, IID, _bars_file, _CollectConfig, _config, _run_node
from venues.models import Venue
from venues.node.config import node_plan
from venues.node.publisher import MarketDataPublisher
from venues.replay.client import bar_base_volume, quote_tick_from_bar, resolve_sources
from venues.replay.errors import ReplayDataError
from venues.replay.records import BarRecord
from venues.replay.sources import SkipReport, parse_source, read_bars_csv, round_to_tick

FUTURES_KEY = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
BARS = {"kind": "bars", "format": "bars_csv", "interval": "1m", "price_rounding": "half_even",
        "path": "market/btc_perp_1m_bars_2022-01.csv"}
HEADER = "timestamp,open,high,low,close,volume\n"


def _csv(tmp_path, *rows: str):
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    return path


# -- prices onto the tick ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("46377.05", "46377.0"), ("46377.15", "46377.2"), ("46377.149", "46377.1"), ("46377.125", "46377.1"),
    ("46377", "46377.0"), ("0.26", "0.5"),
])
def test_round_to_tick_takes_the_nearest_multiple_ties_to_even(value, expected):
    tick = Decimal("0.5") if value == "0.26" else Decimal("0.1")

    assert str(round_to_tick(Decimal(value), tick)) == expected


def test_read_bars_csv_half_even_rounds_off_tick_prices_and_counts_them(tmp_path):
    path = _csv(tmp_path, "2022-01-01 00:00:00,46319.125,46385.0,46319.05,46377.15,100",
                "2022-01-01 00:01:00,46377.0,46411.0,46377.0,46411.0,200")
    report = SkipReport()

    bars = list(read_bars_csv(path, price_precision=1, price_rounding="half_even", tick_size=Decimal("0.1"),
                              report=report))

    assert [(b.open, b.high, b.low, b.close) for b in bars] == [
        (Decimal("46319.1"), Decimal("46385.0"), Decimal("46319.0"), Decimal("46377.2")),
        (Decimal("46377.0"), Decimal("46411.0"), Decimal("46377.0"), Decimal("46411.0"))]
    assert report.rounded_prices == 3 and report.max_price_adjustment == Decimal("0.05")


def test_read_bars_csv_refuses_off_tick_prices_by_default_naming_line_and_field(tmp_path):
    path = _csv(tmp_path, "2022-01-01 00:00:00,46319.0,46385.0,46319.0,46377.0,100",
                "2022-01-01 00:01:00,46377.0,46411.125,46377.0,46411.0,200")

    with pytest.raises(ReplayDataError, match=r"line 3: field 'high': 46411.125 has 3 decimals"):
        list(read_bars_csv(path, price_precision=1))


@pytest.mark.parametrize(("spec", "message"), [
    ({"price_rounding": "half_even"}, "needs tick_size"),
    ({"price_rounding": "nearest", "tick_size": "0.1"}, "price_rounding must be one of"),
    ({"price_rounding": "half_even", "tick_size": "0"}, "tick_size must be a positive decimal"),
    ({"price_rounding": "half_even", "tick_size": 0.1}, "tick_size must be a positive decimal"),
])
def test_parse_source_validates_price_rounding_options(tmp_path, spec, message):
    path = _csv(tmp_path, "2022-01-01 00:00:00,1,1,1,1,1")

    with pytest.raises(ReplayDataError, match=message):
        parse_source({"kind": "bars", "format": "bars_csv", "path": str(path), **spec}, tmp_path)


def test_resolve_sources_gives_a_rounding_source_the_instruments_tick(tmp_path):
    path = _csv(tmp_path, "2022-01-01 00:00:00,1,1,1,1,1")
    spec = {"kind": "bars", "format": "bars_csv", "path": str(path), "price_rounding": "half_even"}

    (source,) = resolve_sources(_config(sources=(spec,), data_dir=str(tmp_path)))

    assert dict(source.options)["tick_size"] == Decimal("0.01") == Decimal(BTCUSDT.price_increment)


@needs_market_data
def test_shared_futures_bars_round_26_prices_by_at_most_half_a_tick():
    (source,) = resolve_sources(_config(sources=(BARS,), instrument=_perp_instrument()))

    bars = list(source)

    assert len(bars) == 45_031
    assert source.report.rounded_prices == 26 and source.report.max_price_adjustment <= Decimal("0.05")
    assert all(price == price.quantize(Decimal("0.1")) for b in bars for price in (b.open, b.high, b.low, b.close))


def _perp_instrument():
    from venues.replay.client import ReplayInstrumentConfig

    return ReplayInstrumentConfig(symbol="BTCUSDT-PERP", base_currency="BTC", quote_currency="USDT",
                                  price_precision=1, size_precision=3, price_increment="0.1", size_increment="0.001")


# -- quotes from bars ----------------------------------------------------------------------------


def test_quote_tick_from_bar_quotes_both_sides_at_the_close_with_the_bars_base_volume():
    record = BarRecord(ts=datetime(2022, 1, 1, tzinfo=UTC), interval=timedelta(minutes=1), open=Decimal("46319.0"),
                       high=Decimal("46385.0"), low=Decimal("46319.0"), close=Decimal("46377.0"),
                       volume=Decimal("2300413.7295"), volume_unit="QUOTE")

    tick = quote_tick_from_bar(record, IID, 1, 3, ts_ns=123)

    assert isinstance(tick, QuoteTick) and (tick.ts_event, tick.ts_init) == (123, 123)
    assert tick.bid_price.as_decimal() == tick.ask_price.as_decimal() == Decimal("46377.0")
    assert tick.bid_size.as_decimal() == tick.ask_size.as_decimal() == bar_base_volume(record, 3) > 0


def test_quote_tick_from_a_bar_without_volume_still_quotes_one_lot():
    record = BarRecord(ts=datetime(2022, 1, 1, tzinfo=UTC), interval=timedelta(minutes=1), open=Decimal("1"),
                       high=Decimal("1"), low=Decimal("1"), close=Decimal("1"), volume=Decimal("0"),
                       volume_unit="BASE")

    tick = quote_tick_from_bar(record, IID, 2, 3, ts_ns=1)

    assert tick.bid_size.as_decimal() == Decimal("0.001")


def test_replay_client_serves_quote_subscribers_of_a_bars_only_recording_bar_then_quote(monkeypatch, tmp_path):
    # Arrange: 1-second bars only; the strategy subscribes quotes, not bars
    bars_spec = {"kind": "bars", "format": "bars_csv", "interval": "1s", "volume_unit": "BASE",
                 "path": str(_bars_file(tmp_path / "bars.csv", datetime(2021, 1, 8, tzinfo=UTC), 30,
                                        timedelta(seconds=1)))}
    config = _config(sources=(bars_spec,), speed=20.0, data_dir=str(tmp_path))
    bar_type = "BTCUSDT.BINANCE-1-SECOND-LAST-EXTERNAL"

    def check(run):
        quotes = run.of(QuoteTick)
        assert len(quotes) >= 3 and run.items == quotes  # the strategy took no bars
        closes = [q.bid_price.as_decimal() for q in quotes]
        assert closes == [Decimal("39401.00") + i for i in range(len(quotes))]  # each bar's close, in order
        assert all(q.bid_price == q.ask_price for q in quotes)
        assert run.client.quotes_from_bars and run.client.published["bars"] >= len(quotes)
        cached = run.cache.bars(BarType.from_str(bar_type))  # the bars reached the node's cache too
        assert len(cached) >= len(quotes)

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), quotes=True), 3, check, config=config)


# -- publisher -----------------------------------------------------------------------------------


def _bar(close: str, ts_ns: int) -> Bar:
    from nautilus_trader.model.objects import Price, Quantity

    price = Price.from_str(close)
    return Bar(BarType.from_str(f"{IID}-1-MINUTE-LAST-EXTERNAL"), price, price, price, price,
               Quantity.from_str("1.000"), ts_ns, ts_ns)


def _quote(bid: str, ask: str, ts_ns: int) -> QuoteTick:
    from nautilus_trader.model.objects import Price, Quantity

    return QuoteTick(IID, Price.from_str(bid), Price.from_str(ask), Quantity.from_str("1.0"),
                     Quantity.from_str("1.0"), ts_ns, ts_ns)


def test_publisher_takes_a_bar_close_as_top_of_book_only_for_a_listing_without_quotes():
    publisher = MarketDataPublisher(interval_secs=1.0)

    publisher.on_bar("A", _bar("100.0", 1_700_000_000_000_000_000))
    publisher.on_quote("B", _quote("99.0", "101.0", 1_700_000_000_000_000_000))
    publisher.on_bar("B", _bar("120.0", 1_700_000_000_000_000_001))

    with publisher._lock:
        pending = dict(publisher._pending)
    assert (pending["A"].bid, pending["A"].ask, pending["A"].last) == (Decimal("100.0"),) * 3
    assert (pending["B"].bid, pending["B"].ask) == (Decimal("99.0"), Decimal("101.0"))  # the quote stands


# -- the node plan of a bars-only paper venue ----------------------------------------------------


def _futures_listing(config: dict):
    venue = VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures", config=config)
    key = parse_instrument_key(FUTURES_KEY)
    return InstrumentFactory(venue=venue, instrument_key=FUTURES_KEY, nautilus_instrument_id=key.nautilus_instrument_id(),
                             tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), min_quantity=Decimal("0.001"),
                             max_quantity=None, min_notional=Decimal("100"))


@needs_market_data
@pytest.mark.django_db
def test_node_plan_bars_only_listing_subscribes_quotes_and_notes_the_rounding():
    _futures_listing({"replay": {"data_dir": str(SHARED_DATA), "speed": 60.0, "instruments": {FUTURES_KEY: [BARS]}}})

    plan = node_plan()

    (venue,) = plan.venues
    assert venue.problems == ()
    assert venue.notes == (f"{FUTURES_KEY}: recorded prices off the 0.1 tick are rounded half-even onto it "
                           "(replay source price_rounding)",)
    (listing,) = plan.listings
    assert listing.feeds == ("bars", "quotes") and listing.nautilus_instrument_id == "BTCUSDT-PERP.BINANCE"
    assert type(plan.instruments[0]).__name__ == "CryptoPerpetual"
    assert plan.exec_clients["SANDBOX_BINANCE"].bar_instruments == ("BTCUSDT-PERP.BINANCE",)
    assert plan.exec_clients["SANDBOX_BINANCE"].bar_execution is True


@needs_market_data
@pytest.mark.django_db
def test_node_plan_bars_beside_quotes_stay_off_the_paper_book():
    quotes = {"kind": "quotes", "format": "binance_quotes_parquet",
              "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"}
    bars = {**BARS, "price_rounding": "refuse", "price_precision": 0}  # the bars' whole-dollar grid
    venue = VenueFactory(code="BINANCE-SPOT", config={"replay": {"data_dir": str(SHARED_DATA), "instruments": {
        "BINANCE-SPOT:SPOT_PAIR:BTC-USDT": [quotes, bars]}}})
    InstrumentFactory(venue=venue)

    plan = node_plan()

    assert plan.venues[0].problems == () and plan.listings[0].feeds == ("bars", "quotes")
    assert plan.exec_clients["SANDBOX_BINANCE"].bar_instruments == ()


@pytest.mark.django_db
def test_node_plan_reports_a_replay_block_in_an_old_shape():
    _futures_listing({"replay": {"data_dir": "../shared/data", "bars_1m": "market/btc_perp_1m_bars_2022-01.csv"}})

    plan = node_plan()

    problems = plan.venues[0].problems
    assert "has key(s) ['bars_1m'] of an older shape" in problems[0]
    assert "no replay source configured" in problems[1] and plan.data_clients == {}


# -- seed_demo -----------------------------------------------------------------------------------


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_gives_the_futures_venue_bars_in_the_replay_clients_shape():
    _seed()

    replay = Venue.objects.get(code="BINANCE-FUTURES").config["replay"]

    (source,) = replay["instruments"][FUTURES_KEY]
    assert (source["kind"], source["format"], source["price_rounding"]) == ("bars", "bars_csv", "half_even")
    assert set(replay) == {"data_dir", "speed", "loop", "instruments"} and replay["speed"] > 1


@pytest.mark.django_db
def test_seed_demo_migrates_a_replay_block_an_earlier_seed_wrote():
    from orders.management.commands.seed_demo import EARLIER_REPLAY, VENUES

    _seed()
    for code in ("BINANCE-SPOT", "BINANCE-FUTURES"):
        venue = Venue.objects.get(code=code)
        venue.config = {**venue.config, "replay": EARLIER_REPLAY[code][0]}
        venue.save()

    out = _seed()

    current = {spec["code"]: spec["config"]["replay"] for spec in VENUES}
    for code in ("BINANCE-SPOT", "BINANCE-FUTURES"):
        assert Venue.objects.get(code=code).config["replay"] == current[code]
        assert f"migrated venue {code} config['replay']" in out
    assert "nothing to do" in _seed()  # and once migrated, nothing more


@pytest.mark.django_db
def test_seed_demo_reports_an_edited_old_shape_block_and_leaves_it():
    _seed()
    edited = {"data_dir": "/srv/data", "bars_1m": "market/other.csv"}
    Venue.objects.filter(code="BINANCE-FUTURES").update(config={"replay": edited})

    out = _seed()

    assert Venue.objects.get(code="BINANCE-FUTURES").config == {"replay": edited}
    assert "venue BINANCE-FUTURES: config['replay'] has key(s) ['bars_1m'] of an older shape" in out
    assert "left as it is" in out


@pytest.mark.django_db
def test_seed_demo_never_overwrites_a_replay_block_in_the_current_shape():
    _seed()
    mine = {"data_dir": "/srv/data", "speed": 1.0, "instruments": {FUTURES_KEY: [BARS]}}
    Venue.objects.filter(code="BINANCE-FUTURES").update(config={"replay": mine})

    _seed()

    assert Venue.objects.get(code="BINANCE-FUTURES").config == {"replay": mine}

