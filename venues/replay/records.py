"""Recorded market-data events as the replay layer streams them.

Plain frozen dataclasses, independent of NautilusTrader: the replay data client converts them to
``QuoteTick`` / ``TradeTick`` / ``OrderBookDeltas`` / ``Bar`` at the node boundary.

Units: prices in quote currency, sizes in base units (contracts for derivatives, e.g. USD contracts
on Deribit and BitMEX inverse perpetuals), all ``Decimal``; ``ts`` is a UTC-aware ``datetime``.
Every record validates its own fields on construction (``TypeError`` for a float or a naive
datetime, ``ValueError`` for a negative size or non-positive price), so a reader can never yield
an inconsistent record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, TypeAlias

from venues.marketdata import BookLevel

AggressorSide: TypeAlias = Literal["BUY", "SELL"]
BookSide: TypeAlias = Literal["BID", "ASK"]
VolumeUnit: TypeAlias = Literal["QUOTE", "BASE"]


def _check_ts(ts: object) -> None:
    if not isinstance(ts, datetime):
        raise TypeError(f"ts must be a datetime, got {type(ts).__name__}")
    if ts.tzinfo is None or ts.utcoffset() != timedelta(0):
        raise TypeError(f"ts must be UTC-aware, got {ts!r}")


def _check_dec(name: str, value: object, *, positive: bool = False) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if not positive and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def aggressor_from_buyer_maker(buyer_maker: bool) -> AggressorSide:
    """Return the aggressor (taker) side of a Binance trade from its buyer-maker flag.

    Parameters
    ----------
    buyer_maker : bool
        Binance's ``isBuyerMaker`` (REST ``GET /api/v3/trades`` / ``aggTrades`` field ``m``; the
        ``<symbol>@trade`` stream's ``m``: "Is the buyer the market maker?").

    Returns
    -------
    {"BUY", "SELL"}
        ``SELL`` when the buyer was the maker (the resting bid was hit by a seller), ``BUY``
        otherwise (a buyer lifted a resting ask).

    Notes
    -----
    Source: Binance Spot API docs, "Recent trades list" and "Trade Streams"
    (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints).
    """
    return "SELL" if buyer_maker else "BUY"


@dataclass(frozen=True, slots=True)
class QuoteRecord:
    """Top of book at ``ts``: best bid/ask price (quote currency) and size (base units)."""

    ts: datetime
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        _check_dec("bid", self.bid, positive=True)
        _check_dec("ask", self.ask, positive=True)
        _check_dec("bid_size", self.bid_size)
        _check_dec("ask_size", self.ask_size)

    def with_ts(self, ts: datetime) -> QuoteRecord:
        """Return a copy stamped ``ts`` (UTC)."""
        return dataclasses.replace(self, ts=ts)


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade print.

    Parameters
    ----------
    ts : datetime
        Exchange time of the trade (UTC).
    price : Decimal
        Quote currency, > 0.
    size : Decimal
        Base units (contracts for derivatives), > 0.
    aggressor_side : {"BUY", "SELL"} or None
        The taker's side (see :func:`aggressor_from_buyer_maker`); None when the source does not
        know it (Tardis ``side == "unknown"``).
    trade_id : str
        The venue's trade id as text (Binance integers, BitMEX UUIDs).
    """

    ts: datetime
    price: Decimal
    size: Decimal
    aggressor_side: AggressorSide | None
    trade_id: str

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        _check_dec("price", self.price, positive=True)
        _check_dec("size", self.size, positive=True)
        if self.aggressor_side not in ("BUY", "SELL", None):
            raise ValueError(f"aggressor_side must be BUY, SELL or None, got {self.aggressor_side!r}")
        if not isinstance(self.trade_id, str) or not self.trade_id:
            raise TypeError(f"trade_id must be a non-empty str, got {self.trade_id!r}")

    def with_ts(self, ts: datetime) -> TradeRecord:
        """Return a copy stamped ``ts`` (UTC)."""
        return dataclasses.replace(self, ts=ts)


@dataclass(frozen=True, slots=True)
class BookRecord:
    """A full order-book state at ``ts``.

    ``bids`` best (highest) first, ``asks`` best (lowest) first, each a tuple of
    :class:`~venues.marketdata.BookLevel` (price in quote currency, size in base units or
    contracts, size > 0). A side may be empty when the recording holds none of it.

    Raises
    ------
    ValueError
        When a side is not strictly ordered best first or holds a level of size 0.
    """

    ts: datetime
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        for name, levels, better in (
            ("bids", self.bids, lambda a, b: a > b),
            ("asks", self.asks, lambda a, b: a < b),
        ):
            if not isinstance(levels, tuple):
                raise TypeError(f"{name} must be a tuple of BookLevel")
            for i, level in enumerate(levels):
                _check_dec(f"{name}[{i}].price", level.price, positive=True)
                _check_dec(f"{name}[{i}].size", level.size, positive=True)
                if i and not better(levels[i - 1].price, level.price):
                    raise ValueError(f"{name} not ordered best first at level {i}: {level.price}")

    @property
    def best_bid(self) -> BookLevel | None:
        """The best bid level, or None when the bid side is empty."""
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> BookLevel | None:
        """The best ask level, or None when the ask side is empty."""
        return self.asks[0] if self.asks else None

    def with_ts(self, ts: datetime) -> BookRecord:
        """Return a copy stamped ``ts`` (UTC)."""
        return dataclasses.replace(self, ts=ts)


@dataclass(frozen=True, slots=True)
class BookDeltaRecord:
    """One price-level change: the level's new absolute size, ``size == 0`` removing it.

    Parameters
    ----------
    ts : datetime
        Exchange time of the update event (UTC).
    side : {"BID", "ASK"}
        Book side (NautilusTrader: BID ↔ ``OrderSide.BUY``, ASK ↔ ``OrderSide.SELL``).
    price : Decimal
        Quote currency, > 0.
    size : Decimal
        New size at ``price`` in base units (contracts for derivatives); 0 = level removed.
    update_id : int | None
        The venue's sequence number of the event (Binance final update id ``u``), if any.
    is_last : bool
        True on the last delta of one venue event (NautilusTrader's ``F_LAST`` flag): a consumer
        should only treat the book as consistent after it.
    """

    ts: datetime
    side: BookSide
    price: Decimal
    size: Decimal
    update_id: int | None = None
    is_last: bool = True

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        if self.side not in ("BID", "ASK"):
            raise ValueError(f"side must be BID or ASK, got {self.side!r}")
        _check_dec("price", self.price, positive=True)
        _check_dec("size", self.size)

    def with_ts(self, ts: datetime) -> BookDeltaRecord:
        """Return a copy stamped ``ts`` (UTC)."""
        return dataclasses.replace(self, ts=ts)


@dataclass(frozen=True, slots=True)
class BarRecord:
    """An OHLCV bar, stamped at its **close** (``ts``), when it becomes known.

    Parameters
    ----------
    ts : datetime
        Close time of the bar (UTC) = open time + ``interval``; publishing at ``ts`` never leaks
        a bar before its interval has ended.
    interval : timedelta
        Bar length (> 0), e.g. 1 minute.
    open, high, low, close : Decimal
        Prices in quote currency, ``low <= open, close <= high``.
    volume : Decimal
        Traded volume over the interval, in the unit ``volume_unit`` names: ``"QUOTE"`` = quote
        currency notional (the shared ``btc_perp_1m_bars_2022-01.csv``, per data/README.md),
        ``"BASE"`` = base units. NautilusTrader bars carry base-unit volume: convert at the node.
    volume_unit : {"QUOTE", "BASE"}
    """

    ts: datetime
    interval: timedelta
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    volume_unit: VolumeUnit

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        if not isinstance(self.interval, timedelta) or self.interval <= timedelta(0):
            raise ValueError(f"interval must be a positive timedelta, got {self.interval!r}")
        for name in ("open", "high", "low", "close"):
            _check_dec(name, getattr(self, name), positive=True)
        _check_dec("volume", self.volume)
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise ValueError(
                f"inconsistent OHLC: open={self.open} high={self.high} low={self.low} close={self.close}"
            )
        if self.volume_unit not in ("QUOTE", "BASE"):
            raise ValueError(f"volume_unit must be QUOTE or BASE, got {self.volume_unit!r}")

    @property
    def open_time(self) -> datetime:
        """Start of the bar's interval (UTC)."""
        return self.ts - self.interval

    def with_ts(self, ts: datetime) -> BarRecord:
        """Return a copy stamped ``ts`` (UTC) as its close time."""
        return dataclasses.replace(self, ts=ts)


Record: TypeAlias = QuoteRecord | TradeRecord | BookRecord | BookDeltaRecord | BarRecord
