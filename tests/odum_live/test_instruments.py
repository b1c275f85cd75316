"""Canonical instrument keys (odum_live/instruments.py): parse, format, errors, venue mappings.

NautilusTrader ids are checked against the installed adapters' own symbol code
(``BinanceSymbol.parse_as_nautilus``, ``BybitSymbol``) and ``InstrumentId.from_str``; venue
symbols against the recorded venue payloads in ``../shared/data/venue_payloads`` where present.
"""

import pickle
import re
from datetime import date
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from odum_live.instruments import (
    ASSET_CLASSES,
    INSTRUMENT_TYPES,
    InstrumentKey,
    InstrumentKeyError,
    parse_instrument_key,
)
from tests.helpers import SHARED_DATA

PARTS = {
    "key", "asset_class", "venue", "instrument_type", "payload", "base", "quote",
    "expiry", "strike", "option_kind", "suffix",
}
PAYLOADS = SHARED_DATA / "venue_payloads"


# -- examples ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "BINANCE-SPOT:SPOT_PAIR:BTC-USDT",
            {"venue": "BINANCE-SPOT", "instrument_type": "SPOT_PAIR", "base": "BTC", "quote": "USDT"},
        ),
        ("BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", {"base": "BTC", "quote": "USDT", "settlement": "LIN"}),
        ("DERIBIT:PERPETUAL:BTC-USD@INV", {"venue": "DERIBIT", "quote": "USD", "settlement": "INV"}),
        (
            "DERIBIT:OPTION:BTC-USD-50000-20241231-C",
            {"strike": Decimal("50000"), "expiry": date(2024, 12, 31), "option_kind": "C", "settlement": None},
        ),
        ("ANY:PERPETUAL:BTC-USDT@LIN", {"venue": "ANY", "settlement": "LIN"}),
        ("CRYPTO:OKX:FUTURE:BTC-USD-20241227@INV", {"asset_class": "CRYPTO", "expiry": date(2024, 12, 27)}),
        ("EQUITY:INTERACTIVE_BROKERS:EQUITY:BRK.B", {"asset_class": "EQUITY", "symbol": "BRK.B", "base": None}),
        (
            "DEFI:UNISWAP-V3:LIQUIDITY_POOL:ETH-USDC-500",
            {"instrument_type": "LIQUIDITY_POOL", "symbol": "ETH-USDC-500"},
        ),
        ("DERIBIT:OPTION:XRP-USDC-2.5-20250530-P@LIN", {"strike": Decimal("2.5"), "option_kind": "P"}),
    ],
)
def test_parse_design_examples_gives_fields_and_formats_back(text, fields):
    # Act
    key = InstrumentKey.parse(text)

    # Assert
    assert {name: getattr(key, name) for name in fields} == fields
    assert str(key) == text and parse_instrument_key(text) == key


def test_equivalence_key_drops_venue_and_asset_class():
    # Arrange
    keys = ["CRYPTO:BYBIT:PERPETUAL:BTC-USDT@LIN", "OKX:PERPETUAL:BTC-USDT@LIN", "ANY:PERPETUAL:BTC-USDT@LIN"]

    # Act
    equivalence = {InstrumentKey.parse(k).equivalence_key for k in keys}

    # Assert
    assert equivalence == {"PERPETUAL:BTC-USDT@LIN"}


def test_any_key_is_any_venue_and_with_venue_names_a_listing():
    # Arrange
    key = InstrumentKey.parse("ANY:PERPETUAL:BTC-USDT@LIN")

    # Act
    listing = key.with_venue("BYBIT")

    # Assert
    assert key.is_any_venue and not listing.is_any_venue
    assert str(listing) == "BYBIT:PERPETUAL:BTC-USDT@LIN" and listing.equivalence_key == key.equivalence_key


# -- venue symbols and NautilusTrader ids ---------------------------------------------------------
MAPPINGS = [
    # key, venue symbol, NautilusTrader InstrumentId
    ("BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "BTCUSDT", "BTCUSDT.BINANCE"),
    ("BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", "BTCUSDT", "BTCUSDT-PERP.BINANCE"),
    ("BINANCE-FUTURES:PERPETUAL:BTC-USD@INV", "BTCUSD_PERP", "BTCUSD-PERP.BINANCE"),
    ("BINANCE-FUTURES:FUTURE:BTC-USDT-20241227@LIN", "BTCUSDT_241227", "BTCUSDT_241227.BINANCE"),
    ("BINANCE-FUTURES:FUTURE:BTC-USD-20250328@INV", "BTCUSD_250328", "BTCUSD_250328.BINANCE"),
    ("BYBIT:SPOT_PAIR:BTC-USDT", "BTCUSDT", "BTCUSDT-SPOT.BYBIT"),
    ("BYBIT:PERPETUAL:BTC-USDT@LIN", "BTCUSDT", "BTCUSDT-LINEAR.BYBIT"),
    ("BYBIT:PERPETUAL:BTC-USDC@LIN", "BTCPERP", "BTCPERP-LINEAR.BYBIT"),
    ("BYBIT:PERPETUAL:BTC-USD@INV", "BTCUSD", "BTCUSD-INVERSE.BYBIT"),
    ("BYBIT:FUTURE:BTC-USDT-20250822@LIN", "BTCUSDT-22AUG25", "BTCUSDT-22AUG25-LINEAR.BYBIT"),
    ("BYBIT:FUTURE:BTC-USDC-20240830@LIN", "BTC-30AUG24", "BTC-30AUG24-LINEAR.BYBIT"),
    ("BYBIT:FUTURE:BTC-USD-20250328@INV", "BTCUSDH25", "BTCUSDH25-INVERSE.BYBIT"),
    ("BYBIT:OPTION:ETH-USDC-16000-20260626-P", "ETH-26JUN26-16000-P", "ETH-26JUN26-16000-P-OPTION.BYBIT"),
    ("BYBIT:OPTION:BTC-USDC-17500-20230106-C", "BTC-6JAN23-17500-C", "BTC-6JAN23-17500-C-OPTION.BYBIT"),
    ("OKX:SPOT_PAIR:BTC-USDT", "BTC-USDT", "BTC-USDT.OKX"),
    ("OKX:PERPETUAL:BTC-USDT@LIN", "BTC-USDT-SWAP", "BTC-USDT-SWAP.OKX"),
    ("OKX:PERPETUAL:ETH-USD@INV", "ETH-USD-SWAP", "ETH-USD-SWAP.OKX"),
    ("OKX:FUTURE:BTC-USD-20241227@INV", "BTC-USD-241227", "BTC-USD-241227.OKX"),
    ("OKX:OPTION:BTC-USD-94000-20241217-C@INV", "BTC-USD-241217-94000-C", "BTC-USD-241217-94000-C.OKX"),
    ("DERIBIT:SPOT_PAIR:BTC-USDC", "BTC_USDC", "BTC_USDC.DERIBIT"),
    ("DERIBIT:PERPETUAL:BTC-USD@INV", "BTC-PERPETUAL", "BTC-PERPETUAL.DERIBIT"),
    ("DERIBIT:PERPETUAL:ETH-USDC@LIN", "ETH_USDC-PERPETUAL", "ETH_USDC-PERPETUAL.DERIBIT"),
    ("DERIBIT:FUTURE:BTC-USD-20241227@INV", "BTC-27DEC24", "BTC-27DEC24.DERIBIT"),
    ("DERIBIT:FUTURE:BTC-USD-20260605@INV", "BTC-5JUN26", "BTC-5JUN26.DERIBIT"),
    ("DERIBIT:OPTION:BTC-USD-50000-20241231-C", "BTC-31DEC24-50000-C", "BTC-31DEC24-50000-C.DERIBIT"),
    ("DERIBIT:OPTION:XRP-USDC-2.5-20250530-C@LIN", "XRP_USDC-30MAY25-2d5-C", "XRP_USDC-30MAY25-2d5-C.DERIBIT"),
    ("INTERACTIVE_BROKERS:EQUITY:AAPL", "AAPL", "AAPL.INTERACTIVE_BROKERS"),
]


@pytest.mark.parametrize(("text", "symbol", "nautilus_id"), MAPPINGS)
def test_venue_mappings_give_venue_symbol_and_a_valid_nautilus_instrument_id(text, symbol, nautilus_id):
    # Arrange
    from nautilus_trader.model.identifiers import InstrumentId

    key = InstrumentKey.parse(text)

    # Act
    instrument_id = InstrumentId.from_str(key.nautilus_instrument_id())

    # Assert
    assert key.venue_symbol() == symbol
    assert key.nautilus_instrument_id() == nautilus_id and str(instrument_id) == nautilus_id


@pytest.mark.parametrize(
    ("text", "account_type"),
    [(t, a) for t, a in (
        ("BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "SPOT"),
        ("BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", "USDT_FUTURES"),
        ("BINANCE-FUTURES:PERPETUAL:BTC-USD@INV", "COIN_FUTURES"),
        ("BINANCE-FUTURES:FUTURE:BTC-USDT-20241227@LIN", "USDT_FUTURES"),
        ("BINANCE-FUTURES:FUTURE:BTC-USD-20250328@INV", "COIN_FUTURES"),
    )],
)
def test_binance_nautilus_id_matches_the_adapters_symbol_parsing(text, account_type):
    # Arrange: what BinanceFuturesInstrumentProvider / the spot provider build from the raw symbol.
    from nautilus_trader.adapters.binance.common.constants import BINANCE_VENUE
    from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
    from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol

    key = InstrumentKey.parse(text)

    # Act
    adapter_symbol = BinanceSymbol(key.venue_symbol()).parse_as_nautilus(BinanceAccountType[account_type])

    # Assert
    assert key.nautilus_instrument_id() == f"{adapter_symbol}.{BINANCE_VENUE}"


@pytest.mark.parametrize("text", [t for t, _, _ in MAPPINGS if t.startswith("BYBIT:")])
def test_bybit_nautilus_id_matches_the_adapters_symbol(text):
    # Arrange
    from nautilus_trader.adapters.bybit.common.enums import BybitProductType
    from nautilus_trader.adapters.bybit.common.symbol import BybitSymbol
    from nautilus_trader.model.identifiers import InstrumentId

    key = InstrumentKey.parse(text)
    expected_type = {"SPOT_PAIR": BybitProductType.SPOT, "OPTION": BybitProductType.OPTION}.get(
        key.instrument_type, BybitProductType.INVERSE if key.settlement == "INV" else BybitProductType.LINEAR
    )

    # Act
    symbol = BybitSymbol(InstrumentId.from_str(key.nautilus_instrument_id()).symbol.value)

    # Assert
    assert symbol.raw_symbol == key.venue_symbol() and symbol.product_type == expected_type
    assert str(symbol.to_instrument_id()) == key.nautilus_instrument_id()


def test_okx_and_interactive_brokers_ids_use_the_adapters_venue_names():
    # Arrange: the IB adapter module needs ibapi to import, so read its constant from the source.
    from nautilus_trader.adapters.okx.constants import OKX_VENUE

    package = Path(find_spec("nautilus_trader").submodule_search_locations[0])
    ib_source = package / "adapters" / "interactive_brokers" / "common.py"
    ib_venue = re.search(r'^IB: Final\[str\] = "([A-Z_]+)"', ib_source.read_text(), re.MULTILINE).group(1)

    # Act
    okx = InstrumentKey.parse("OKX:PERPETUAL:BTC-USDT@LIN").nautilus_instrument_id()
    ib = InstrumentKey.parse("INTERACTIVE_BROKERS:EQUITY:AAPL").nautilus_instrument_id()

    # Assert
    assert okx.rsplit(".", 1)[1] == OKX_VENUE.value
    assert ib.rsplit(".", 1)[1] == ib_venue


@pytest.mark.parametrize(
    ("venue_dir", "text"),
    [
        ("bybit", "BYBIT:OPTION:ETH-USDC-16000-20260626-P"),
        ("bybit", "BYBIT:OPTION:BTC-USDC-17500-20230106-C"),
        ("bybit", "BYBIT:PERPETUAL:BTC-USD@INV"),
        ("okx", "OKX:OPTION:BTC-USD-94000-20241217-C@INV"),
        ("okx", "OKX:FUTURE:BTC-USD-20241227@INV"),
        ("okx", "OKX:PERPETUAL:BTC-USDT@LIN"),
        ("deribit", "DERIBIT:PERPETUAL:ETH-USDC@LIN"),
        ("deribit", "DERIBIT:FUTURE:BTC-USD-20241227@INV"),
        ("deribit", "DERIBIT:OPTION:BTC-USD-100000-20241227-C"),
        ("binance", "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"),
    ],
)
def test_venue_symbol_appears_in_recorded_venue_payloads(venue_dir, text):
    # Arrange
    folder = PAYLOADS / venue_dir
    if not folder.is_dir():
        pytest.skip(f"recorded venue payloads not found at {folder}")
    symbol = InstrumentKey.parse(text).venue_symbol()

    # Act
    found = any(f'"{symbol}"' in path.read_text(errors="replace") for path in folder.rglob("*.json"))

    # Assert
    assert found, f"{symbol} not in any {venue_dir} payload"


# -- errors name their part ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "part", "value"),
    [
        ("", "key", ""),
        (" BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "key", " BINANCE-SPOT:SPOT_PAIR:BTC-USDT"),
        ("BINANCE-SPOT:SPOT_PAIR:BTC-USDT\n", "key", "BINANCE-SPOT:SPOT_PAIR:BTC-USDT\n"),
        ("BINANCE-SPOT:BTC-USDT", "key", "BINANCE-SPOT:BTC-USDT"),
        ("A:B:C:D:E", "key", "A:B:C:D:E"),
        ("CRYPTOS:BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "asset_class", "CRYPTOS"),
        ("binance-spot:SPOT_PAIR:BTC-USDT", "venue", "binance-spot"),
        ("BINANCE--SPOT:SPOT_PAIR:BTC-USDT", "venue", "BINANCE--SPOT"),
        ("BINANCE-SPOT:SWAP:BTC-USDT", "instrument_type", "SWAP"),
        ("BINANCE-SPOT:SPOT_PAIR:", "payload", ""),
        ("BINANCE-SPOT:SPOT_PAIR:BTCUSDT", "payload", "BTCUSDT"),
        ("BINANCE-FUTURES:FUTURE:BTC-USDT@LIN", "payload", "BTC-USDT"),
        ("IB:EQUITY:aapl", "payload", "aapl"),
        ("BINANCE-SPOT:SPOT_PAIR:B-USDT", "base", "B"),
        ("BINANCE-SPOT:SPOT_PAIR:BTC-usdt", "quote", "usdt"),
        ("BINANCE-SPOT:SPOT_PAIR:BTC-BTC", "quote", "BTC"),
        ("OKX:FUTURE:BTC-USD-20241332@INV", "expiry", "20241332"),
        ("OKX:FUTURE:BTC-USD-2024123@INV", "expiry", "2024123"),
        ("OKX:FUTURE:BTC-USD-19991231@INV", "expiry", "19991231"),
        ("DERIBIT:OPTION:BTC-USD-050000-20241231-C", "strike", "050000"),
        ("DERIBIT:OPTION:BTC-USD-2.50-20241231-C", "strike", "2.50"),
        ("DERIBIT:OPTION:BTC-USD-0-20241231-C", "strike", "0"),
        ("DERIBIT:OPTION:BTC-USD-5E4-20241231-C", "strike", "5E4"),
        ("DERIBIT:OPTION:BTC-USD-50000-20241231-X", "option_kind", "X"),
        ("BINANCE-FUTURES:PERPETUAL:BTC-USDT", "suffix", ""),
        ("BINANCE-FUTURES:PERPETUAL:BTC-USDT@LINEAR", "suffix", "LINEAR"),
        ("BINANCE-SPOT:SPOT_PAIR:BTC-USDT@LIN", "suffix", "LIN"),
        ("BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN@INV", "suffix", "LIN@INV"),
    ],
)
def test_parse_malformed_key_raises_naming_the_part(text, part, value):
    # Act
    with pytest.raises(InstrumentKeyError) as error:
        InstrumentKey.parse(text)

    # Assert
    assert (error.value.part, error.value.value) == (part, value)
    assert str(error.value).startswith(f"{part} {value!r}: ") and error.value.reason


def test_parse_non_string_raises_key_error():
    # Act / Assert
    with pytest.raises(InstrumentKeyError) as error:
        InstrumentKey.parse(None)
    assert error.value.part == "key"


@pytest.mark.parametrize("venue", ["BINANCE\n", "binance", "", "ANY SPOT"])
def test_with_venue_invalid_code_raises_venue_error(venue):
    # Arrange
    key = InstrumentKey.parse("ANY:PERPETUAL:BTC-USDT@LIN")

    # Act / Assert
    with pytest.raises(InstrumentKeyError) as error:
        key.with_venue(venue)
    assert error.value.part == "venue"


def test_any_key_has_no_venue_mapping():
    # Arrange
    key = InstrumentKey.parse("ANY:PERPETUAL:BTC-USDT@LIN")

    # Act / Assert
    for mapping in (key.venue_symbol, key.nautilus_instrument_id):
        with pytest.raises(InstrumentKeyError) as error:
            mapping()
        assert (error.value.part, error.value.value) == ("venue", "ANY")


def test_binance_option_has_venue_symbol_but_no_nautilus_id():
    # Arrange
    key = InstrumentKey.parse("BINANCE-OPTIONS:OPTION:BTC-USDT-50000-20241227-C")

    # Act / Assert
    assert key.venue_symbol() == "BTC-241227-50000-C"
    with pytest.raises(InstrumentKeyError) as error:
        key.nautilus_instrument_id()
    assert error.value.part == "instrument_type"


def test_instrument_key_error_survives_pickling_with_its_fields():
    # Arrange
    error = InstrumentKeyError("venue", "binance", "must be upper-case")

    # Act
    copy = pickle.loads(pickle.dumps(error))

    # Assert
    assert (copy.part, copy.value, copy.reason, str(copy)) == ("venue", "binance", "must be upper-case", str(error))


# -- properties ------------------------------------------------------------------------------------
venues = st.one_of(st.just("ANY"), st.from_regex(r"[A-Z][A-Z0-9]{0,7}(?:[-_][A-Z0-9]{1,6}){0,2}", fullmatch=True))
currencies = st.from_regex(r"[A-Z0-9]{2,8}", fullmatch=True)
expiries = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
strike_texts = st.one_of(
    st.from_regex(r"[1-9][0-9]{0,6}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{0,4}\.[0-9]{0,3}[1-9]", fullmatch=True),
    st.from_regex(r"0\.[0-9]{0,3}[1-9]", fullmatch=True),
)
equity_symbols = st.from_regex(r"[A-Z0-9]{1,12}(?:\.[A-Z0-9]{1,4})?", fullmatch=True)
token_payloads = st.from_regex(r"[A-Z0-9]{1,6}(?:[-_.][A-Z0-9]{1,6}){0,3}", fullmatch=True)
asset_classes = st.one_of(st.none(), st.sampled_from(ASSET_CLASSES))
TOKEN_TYPES = [t for t in INSTRUMENT_TYPES if t not in ("SPOT_PAIR", "PERPETUAL", "FUTURE", "OPTION", "EQUITY")]


@st.composite
def key_parts(draw):
    """The parts of a valid key, as text: (asset_class, venue, type, payload pieces, suffix)."""
    instrument_type = draw(st.sampled_from(INSTRUMENT_TYPES))
    asset_class, venue = draw(asset_classes), draw(venues)
    if instrument_type in ("SPOT_PAIR", "PERPETUAL", "FUTURE", "OPTION"):
        base = draw(currencies)
        quote = draw(currencies.filter(lambda q: q != base))
        pieces = [base, quote]
        if instrument_type == "OPTION":
            pieces.append(draw(strike_texts))
        if instrument_type in ("FUTURE", "OPTION"):
            pieces.append(f"{draw(expiries):%Y%m%d}")
        if instrument_type == "OPTION":
            pieces.append(draw(st.sampled_from(["C", "P"])))
    elif instrument_type == "EQUITY":
        pieces = [draw(equity_symbols)]
    else:
        pieces = [draw(token_payloads)]
    suffix = {
        "PERPETUAL": draw(st.sampled_from(["LIN", "INV"])),
        "FUTURE": draw(st.sampled_from(["LIN", "INV"])),
        "OPTION": draw(st.sampled_from([None, "LIN", "INV"])),
    }.get(instrument_type)
    return {"asset_class": asset_class, "venue": venue, "type": instrument_type, "pieces": pieces, "suffix": suffix}


def key_text(parts):
    head = f"{parts['asset_class']}:" if parts["asset_class"] else ""
    tail = f"@{parts['suffix']}" if parts["suffix"] is not None else ""
    return f"{head}{parts['venue']}:{parts['type']}:{'-'.join(parts['pieces'])}{tail}"


@st.composite
def instrument_keys(draw):
    """Valid InstrumentKey values built field by field (not through the parser)."""
    instrument_type = draw(st.sampled_from(INSTRUMENT_TYPES))
    fields = {"venue": draw(venues), "instrument_type": instrument_type, "asset_class": draw(asset_classes)}
    if instrument_type in ("SPOT_PAIR", "PERPETUAL", "FUTURE", "OPTION"):
        fields["base"] = draw(currencies)
        fields["quote"] = draw(currencies.filter(lambda q: q != fields["base"]))
        if instrument_type in ("FUTURE", "OPTION"):
            fields["expiry"] = draw(expiries)
        if instrument_type == "OPTION":
            fields["strike"] = draw(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e7"), places=4))
            fields["option_kind"] = draw(st.sampled_from(["C", "P"]))
        if instrument_type in ("PERPETUAL", "FUTURE"):
            fields["settlement"] = draw(st.sampled_from(["LIN", "INV"]))
        elif instrument_type == "OPTION":
            fields["settlement"] = draw(st.sampled_from([None, "LIN", "INV"]))
    elif instrument_type == "EQUITY":
        fields["symbol"] = draw(equity_symbols)
    else:
        fields["symbol"] = draw(token_payloads)
    return InstrumentKey(**fields)


@given(parts=key_parts())
def test_format_parse_of_generated_valid_key_text_is_identity(parts):
    # Arrange
    text = key_text(parts)

    # Act
    key = InstrumentKey.parse(text)

    # Assert
    assert str(key) == text
    assert key.equivalence_key == text.split(":", 2 if parts["asset_class"] else 1)[-1]


@given(key=instrument_keys())
def test_parse_format_of_generated_instrument_key_is_identity(key):
    # Act
    again = InstrumentKey.parse(str(key))

    # Assert
    assert again == key


MUTATIONS = {
    # name: (applies to, mutate parts in place, expected part)
    "lower_case_venue": (None, lambda p: p.update(venue="x" + p["venue"]), "venue"),
    "unknown_type": (None, lambda p: p.update(type="SWAP"), "instrument_type"),
    "unknown_asset_class": (None, lambda p: p.update(asset_class="CRYPTOX"), "asset_class"),
    "empty_payload": (None, lambda p: p.update(pieces=[""]), "payload"),
    "bad_suffix": (None, lambda p: p.update(suffix="XYZ"), "suffix"),
    "lower_case_base": ("pair", lambda p: p["pieces"].__setitem__(0, "x" + p["pieces"][0][1:]), "base"),
    "quote_equals_base": ("pair", lambda p: p["pieces"].__setitem__(1, p["pieces"][0]), "quote"),
    "missing_piece": ("pair", lambda p: p["pieces"].pop(), "payload"),
    "month_13": ("dated", lambda p: p["pieces"].__setitem__(-2 if p["type"] == "OPTION" else -1, "20241301"), "expiry"),
    "option_kind_x": ("option", lambda p: p["pieces"].__setitem__(-1, "X"), "option_kind"),
    "strike_leading_zero": ("option", lambda p: p["pieces"].__setitem__(2, "0" + p["pieces"][2]), "strike"),
    "no_settlement": ("settled", lambda p: p.update(suffix=None), "suffix"),
}
APPLIES = {
    None: lambda t: True,
    "pair": lambda t: t in ("SPOT_PAIR", "PERPETUAL", "FUTURE", "OPTION"),
    "dated": lambda t: t in ("FUTURE", "OPTION"),
    "option": lambda t: t == "OPTION",
    "settled": lambda t: t in ("PERPETUAL", "FUTURE"),
}


@given(parts=key_parts(), mutation=st.sampled_from(sorted(MUTATIONS)))
def test_parse_mutated_key_raises_naming_the_mutated_part(parts, mutation):
    # Arrange
    applies, mutate, expected_part = MUTATIONS[mutation]
    assume(APPLIES[applies](parts["type"]))
    parts = {**parts, "pieces": list(parts["pieces"])}
    mutate(parts)

    # Act / Assert
    with pytest.raises(InstrumentKeyError) as error:
        InstrumentKey.parse(key_text(parts))
    assert error.value.part == expected_part


FOREIGN = [" ", "\t", "\n", "\u00a0", "\x00", "é", "ß"]


@given(parts=key_parts(), position=st.integers(min_value=0), junk=st.sampled_from(FOREIGN))
def test_parse_key_with_foreign_character_raises_with_a_part(parts, position, junk):
    # Arrange
    text = key_text(parts)
    index = position % (len(text) + 1)

    # Act / Assert
    with pytest.raises(InstrumentKeyError) as error:
        InstrumentKey.parse(text[:index] + junk + text[index:])
    assert error.value.part in PARTS


KEYISH = st.text(alphabet=st.sampled_from(list("ABCINLTUSDPRV0129-_.:@ \n")), max_size=40)


@given(text=KEYISH | key_parts().map(key_text))
def test_parse_any_text_round_trips_or_raises_instrument_key_error(text):
    # Act
    try:
        key = InstrumentKey.parse(text)
    except InstrumentKeyError as error:
        # Assert
        assert error.part in PARTS
    else:
        assert str(key) == text


@given(key=instrument_keys(), venue=st.sampled_from(["BINANCE-SPOT", "BINANCE-FUTURES", "BYBIT", "OKX", "DERIBIT"]))
def test_nautilus_instrument_id_of_generated_listing_is_a_valid_instrument_id(key, venue):
    # Arrange
    from nautilus_trader.model.identifiers import InstrumentId

    listing = key.with_venue(venue)
    assume(not (venue.startswith("BINANCE") and key.instrument_type == "OPTION"))

    # Act
    text = listing.nautilus_instrument_id()

    # Assert
    instrument_id = InstrumentId.from_str(text)
    assert str(instrument_id) == text
    assert instrument_id.venue.value == venue.split("-")[0]
    assert listing.venue_symbol() and not any(c.isspace() for c in listing.venue_symbol())
