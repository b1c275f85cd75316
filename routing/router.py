"""The smart order router: choose the venue listing an order goes to, and record why.

A *named* key (``BINANCE-SPOT:SPOT_PAIR:BTC-USDT``) is checked, not chosen: the listing must
exist and be enabled, its venue enabled and able to trade in this release (an ``EXTERNAL_SDK`` venue
needs its adapter, and none ships yet: :mod:`venues.availability`) and the venue's circuit not open. An ``ANY`` key
(``ANY:PERPETUAL:BTC-USDT@LIN``) is routed to the eligible listing of an equivalent instrument
(same ``equivalence_key``) with the lowest expected cost, fee + expected slippage + latency penalty
in bps (:mod:`routing.costs`: the standard TCA decomposition, Perold 1988 / Kissell 2013, and the
best-execution factors of MiFID II art. 27(1)).

Ranking of eligible candidates, first difference wins (all deterministic, nothing random):

1. circuit known closed before half-open (trial pending) or unknown (Redis unreachable);
2. slippage known (a fresh book) before unknown (no book: the total is only a lower bound);
3. lower total bps, 4. lower fee bps, 5. venue code, 6. instrument key (alphabetical).

Policies, and why:

- **Circuit state unknown** (Redis down): the venue stays eligible, ranked after venues whose
  circuit is known closed, and the candidate's reason says so. The circuit breaker is an
  availability guard, not a risk control (pre-trade risk and kill switches are): denying every
  order because the health cache is unreachable would turn a monitoring outage into a trading
  outage, while the venue layer checks its breaker again when it submits, and a venue that is
  really down rejects the order visibly.
- **Half-open circuit** (reset timeout elapsed): eligible, ranked after closed ones; the order is
  the trial call that closes or re-opens the circuit.
- **Market data unavailable** (``MarketDataError``: Redis down, malformed snapshot): handled like
  "no book" for every candidate, with the store's message as the reason.
- **Venue without an adapter** (``venues.availability.venue_unavailable_reason``): ineligible, with
  the reason ``venue DERIBIT: adapter 'deribit' (EXTERNAL_SDK) is not available in this release``.
  Left eligible, its orders would be denied for missing market data (the node does not host it, so
  it has none), or rejected by the node: both hide the cause from the trader.
- Ineligible listings are costed too when their data exist, so the record shows what was given up.

Database cost: one query (listings with their venues, ``select_related``), a second only to tell
"venue not configured" from "not listed on that venue" when a named key has no listing. Redis cost
(production): one ``HMGET`` for the books and one ``MGET`` for the circuits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from odum_live.sql import CompiledQuery
from odum_live.instruments import ASSET_CLASSES
from odum_live.intent import OrderIntent
from routing.costs import (
    CostEstimate,
    CostModelParams,
    consolidated_benchmark,
    estimate_cost,
    is_buy_like,
)
from venues.availability import venue_unavailable_reason
from venues.circuit import CircuitState, CircuitStatus, circuit_statuses
from venues.marketdata import MarketDataError, MarketDataStore, MarketSnapshot, market_data
from venues.models import Instrument, Venue

logger = logging.getLogger(__name__)


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class RouteCandidate:
    """One listing the router considered, with its cost figures.

    Parameters
    ----------
    venue : str
        Venue code.
    instrument_key : str
        Canonical key of the listing.
    eligible : bool
        Whether the order may go there (listing and venue enabled, the venue's adapter available in
        this release, circuit not open).
    fee_bps, slippage_bps, latency_bps, total_bps : Decimal | None
        Expected cost components in bps of notional (:mod:`routing.costs`). ``slippage_bps`` is
        None when no fresh book exists; ``total_bps`` is then fee + latency only (a lower bound).
    reason : str
        Why it is ineligible, then what was assumed (``"; "``-separated), e.g. ``venue disabled``
        or ``no book snapshot: slippage unknown, total is fee + latency only; ...``.
    mode : str
        The venue's mode (``live``, ``testnet``, ``paper``); all three are tradable.
    circuit : str
        The venue's circuit state: ``closed``, ``open``, ``half-open`` or ``unknown``.
    expected_price : Decimal | None
        Expected average execution price in quote currency (None when no book).
    """

    venue: str
    instrument_key: str
    eligible: bool
    fee_bps: Decimal | None
    slippage_bps: Decimal | None
    latency_bps: Decimal | None
    total_bps: Decimal | None
    reason: str = ""
    mode: str = ""
    circuit: str = ""
    expected_price: Decimal | None = None

    def to_json(self) -> dict:
        """Return the candidate as JSON-safe data (decimals as strings, None kept as null)."""
        return {
            "venue": self.venue,
            "instrument_key": self.instrument_key,
            "eligible": self.eligible,
            "fee_bps": _dec(self.fee_bps),
            "slippage_bps": _dec(self.slippage_bps),
            "latency_bps": _dec(self.latency_bps),
            "total_bps": _dec(self.total_bps),
            "reason": self.reason,
            "mode": self.mode,
            "circuit": self.circuit,
            "expected_price": _dec(self.expected_price),
        }


@dataclass(frozen=True)
class RoutingDecision:
    """Where an order goes and why (stored as ``Order.routing_decision`` via :meth:`to_json`).

    Parameters
    ----------
    venue : str | None
        The chosen venue code; None when routing failed.
    instrument_key : str | None
        The chosen listing's canonical key (never ``ANY``); None when routing failed.
    venue_type : str | None
        ``NAUTILUS`` or ``EXTERNAL_SDK`` (``Venue.kind``) of the chosen venue.
    listing : Instrument | None
        The chosen listing row (with its venue loaded).
    venue_obj : Venue | None
        The chosen venue row.
    candidates : tuple[RouteCandidate, ...]
        Every listing considered: eligible ones in rank order (the first is the choice, the next
        ones the fall-backs), then ineligible ones by venue code.
    reason : str
        Why this venue, or why none (the submit service denies the order with it).
    decided_at : datetime
        UTC.
    benchmark_price : Decimal | None
        Reference price of the slippage figures, quote currency (None when no book exists).
    benchmark : str
        ``consolidated_mid``, ``touch`` or empty.
    parameters : dict
        Cost-model parameters used (strings).
    snapshots : Mapping[str, MarketSnapshot | None]
        The book snapshots read for the candidates (listing key → snapshot, None when the store
        had none; empty when the store could not answer), as read, fresh or not. Pre-trade risk
        takes the chosen listing's reference price from here instead of reading it again. Not
        part of :meth:`to_json`.
    """

    venue: str | None
    instrument_key: str | None
    venue_type: str | None
    listing: Instrument | None
    venue_obj: Venue | None
    candidates: tuple[RouteCandidate, ...]
    reason: str
    decided_at: datetime
    benchmark_price: Decimal | None = None
    benchmark: str = ""
    parameters: dict = field(default_factory=dict, compare=False, hash=False)
    snapshots: Mapping[str, MarketSnapshot | None] = field(default_factory=dict, compare=False, hash=False,
                                                           repr=False)

    @property
    def routed(self) -> bool:
        """True when a venue was chosen."""
        return self.venue is not None

    def to_json(self) -> dict:
        """Return the decision as JSON-safe data (no model objects; decimals as strings)."""
        return {
            "routed": self.routed,
            "venue": self.venue,
            "instrument_key": self.instrument_key,
            "venue_type": self.venue_type,
            "mode": self.venue_obj.mode if self.venue_obj is not None else None,
            "reason": self.reason,
            "decided_at": self.decided_at.isoformat(),
            "benchmark_price": _dec(self.benchmark_price),
            "benchmark": self.benchmark,
            "cost_model": dict(self.parameters),
            "candidates": [candidate.to_json() for candidate in self.candidates],
        }


@dataclass
class _Evaluation:
    # Working state of one listing during a route() call.
    listing: Instrument
    circuit: CircuitStatus
    blockers: list[str]
    notes: list[str]
    snapshot: MarketSnapshot | None
    no_book_reason: str
    cost: CostEstimate | None = None

    @property
    def eligible(self) -> bool:
        return not self.blockers

    def rank_key(self) -> tuple:
        cost = self.cost
        return (
            0 if self.circuit.state is CircuitState.CLOSED else 1,
            0 if cost.slippage_known else 1,
            cost.total_bps,
            cost.fee_bps,
            self.listing.venue_id,
            self.listing.instrument_key,
        )

    def candidate(self) -> RouteCandidate:
        cost = self.cost
        venue = self.listing.venue
        return RouteCandidate(
            venue=venue.code,
            instrument_key=self.listing.instrument_key,
            eligible=self.eligible,
            fee_bps=cost.fee_bps,
            slippage_bps=cost.slippage_bps,
            latency_bps=cost.latency_bps,
            total_bps=cost.total_bps,
            reason="; ".join([*self.blockers, *self.notes, *cost.notes]),
            mode=venue.mode,
            circuit=str(self.circuit.state),
            expected_price=cost.expected_price,
        )


# The listings of an equivalence key, with their venue: compiled once (odum_live.sql.CompiledQuery)
# — on the submission hot path Django's compilation of the joined select cost more than running
# it. No ORDER BY, and a named venue is picked out here: the few rows are sorted here.
_LISTINGS = CompiledQuery(
    lambda equivalence_key: Instrument.objects.select_related("venue").filter(equivalence_key=equivalence_key)
    .order_by(),
    markers=("<equivalence-key>",),
)


class SmartOrderRouter:
    """Choose the venue listing for an order and record every candidate's figures.

    Parameters
    ----------
    market_data_store : MarketDataStore | None
        Where book snapshots are read; None (the default) uses the process's store
        (``venues.marketdata.market_data()``: Redis in production, memory in the embedded default).

    Notes
    -----
    Stateless and thread-safe; one instance may serve every request.
    """

    def __init__(self, *, market_data_store: MarketDataStore | None = None) -> None:
        self._store = market_data_store

    def route(self, *, intent: OrderIntent) -> RoutingDecision:
        """Route ``intent`` to a venue listing.

        Parameters
        ----------
        intent : OrderIntent
            The validated order: instrument key (named venue or ``ANY``), side, order type, time in
            force, quantity (base units) and limit price (quote currency).

        Returns
        -------
        RoutingDecision
            ``routed`` with the chosen listing, or ``venue=None`` and a reason naming why not: the
            key is not listed (``instrument not listed: ...``), or every listing is blocked
            (listing disabled, venue disabled, the venue's adapter not available in this release,
            circuit open, asset class mismatch).

        Raises
        ------
        django.db.DatabaseError
            Only for infrastructure failures of the database; never for business reasons (an
            unroutable order is a decision, not an exception). Redis failures are absorbed and
            recorded in the candidates' reasons.
        """
        now = timezone.now()
        key = intent.instrument
        params = CostModelParams.from_settings(settings.ODUM)
        listings = _LISTINGS.send(key.equivalence_key).all()
        if key.is_any_venue:
            rows = sorted(listings, key=lambda row: (row.venue_id, row.instrument_key))
            if not rows:
                return self._unrouted(
                    f"instrument not listed: no venue lists {key.equivalence_key} (requested {key})", now, params
                )
        else:
            # The listing's identity is venue + equivalence key; an asset-class prefix is optional.
            rows = sorted((row for row in listings if row.venue_id == key.venue),
                          key=lambda row: row.instrument_key != str(key))[:1]
            if not rows:
                if Venue.objects.filter(code=key.venue).exists():
                    reason = f"instrument not listed: venue {key.venue} has no listing of {key.equivalence_key}"
                else:
                    reason = f"instrument not listed: venue {key.venue} is not configured"
                return self._unrouted(reason, now, params)

        evaluations, snapshots = self._evaluate(rows, intent=intent, now=now, params=params)
        fresh = [e.snapshot for e in evaluations if e.snapshot is not None]
        fresh_eligible = [e.snapshot for e in evaluations if e.snapshot is not None and e.eligible]
        buy = is_buy_like(intent.side)
        benchmark = consolidated_benchmark(snapshots=fresh_eligible or fresh, buy=buy)
        for evaluation in evaluations:
            levels = evaluation.snapshot.depth(intent.side) if evaluation.snapshot is not None else None
            no_book = evaluation.no_book_reason
            if evaluation.snapshot is not None and not levels:
                no_book = f"no {'asks' if buy else 'bids'} in the book"
            venue = evaluation.listing.venue
            evaluation.cost = estimate_cost(
                intent=intent,
                maker_fee_bps=venue.maker_fee_bps,
                taker_fee_bps=venue.taker_fee_bps,
                latency_ms=venue.latency_ms,
                levels=levels or None,
                benchmark=benchmark,
                params=params,
                no_book_reason=no_book,
            )

        eligible = sorted((e for e in evaluations if e.eligible), key=_Evaluation.rank_key)
        blocked = sorted(
            (e for e in evaluations if not e.eligible), key=lambda e: (e.listing.venue_id, e.listing.instrument_key)
        )
        candidates = tuple(e.candidate() for e in [*eligible, *blocked])
        common = {
            "candidates": candidates,
            "decided_at": now,
            "benchmark_price": benchmark.price if benchmark else None,
            "benchmark": benchmark.kind if benchmark else "",
            "parameters": params.to_json(),
            "snapshots": snapshots,
        }
        if not eligible:
            if key.is_any_venue:
                why = "; ".join(f"{e.listing.venue_id}: {', '.join(e.blockers)}" for e in blocked)
                reason = f"no eligible venue for {key}: {why}"
            else:
                only = blocked[0]
                reason = f"{only.listing.instrument_key} not routable: {', '.join(only.blockers)}"
            return RoutingDecision(
                venue=None, instrument_key=None, venue_type=None, listing=None, venue_obj=None, reason=reason, **common
            )

        best = eligible[0]
        listing = best.listing
        venue = listing.venue
        if key.is_any_venue:
            reason = (
                f"lowest expected cost among {len(eligible)} eligible of {len(evaluations)} candidate(s) for "
                f"{key}: {venue.code} {best.cost.total_bps} bps"
            )
            if len(eligible) > 1:
                runner_up = eligible[1]
                reason += f" (next: {runner_up.listing.venue_id} {runner_up.cost.total_bps} bps)"
            if not best.cost.slippage_known:
                reason += f"; {venue.code} has no fresh book: its total is fee + latency only"
        else:
            reason = f"routed to {venue.code} ({venue.mode}) as named: expected cost {best.cost.total_bps} bps"
        if best.circuit.state is not CircuitState.CLOSED:
            reason += f"; circuit {best.circuit.state}"
        return RoutingDecision(
            venue=venue.code,
            instrument_key=listing.instrument_key,
            venue_type=venue.kind,
            listing=listing,
            venue_obj=venue,
            reason=reason,
            **common,
        )

    # -- helpers ----------------------------------------------------------------------------------
    def _evaluate(self, rows: list[Instrument], *, intent: OrderIntent, now: datetime, params: CostModelParams):
        keys = [row.instrument_key for row in rows]
        snapshots, md_error = self._snapshots(keys)
        circuits = circuit_statuses(row.venue_id for row in rows)
        wanted_class = intent.instrument.asset_class
        evaluations = []
        for row in rows:
            circuit = circuits[row.venue_id]
            blockers: list[str] = []
            notes: list[str] = []
            if not row.enabled:
                blockers.append("listing disabled")
            if not row.venue.enabled:
                blockers.append("venue disabled")
            unavailable = venue_unavailable_reason(kind=row.venue.kind, adapter=row.venue.adapter)
            if unavailable:
                blockers.append(f"venue {row.venue_id}: {unavailable}")
            if circuit.is_open:
                blockers.append(f"circuit open ({circuit.detail})")
            elif circuit.state is CircuitState.HALF_OPEN:
                notes.append(f"circuit {circuit.detail}; ranked after venues with a closed circuit")
            elif circuit.state is CircuitState.UNKNOWN:
                notes.append(
                    f"{circuit.detail}; treated as closed (the venue layer re-checks its breaker at "
                    "submission), ranked after venues with a known closed circuit"
                )
            head = row.instrument_key.split(":", 1)[0]
            if wanted_class and head in ASSET_CLASSES and head != wanted_class:
                blockers.append(f"asset class {head} differs from the requested {wanted_class}")
            snapshot = snapshots.get(row.instrument_key)
            no_book = "no book snapshot"
            if md_error:
                no_book = md_error
            elif snapshot is not None and (stale := snapshot.staleness(params.max_book_age_secs, now)):
                no_book = f"book stale ({stale})"
                snapshot = None
            evaluations.append(_Evaluation(row, circuit, blockers, notes, snapshot, no_book))
        return evaluations, ({} if md_error else {key: snapshots.get(key) for key in keys})

    def _snapshots(self, keys: list[str]) -> tuple[dict[str, MarketSnapshot], str]:
        store = self._store if self._store is not None else market_data()
        try:
            return store.get_many(keys), ""
        except MarketDataError as exc:
            # Backend down or a malformed payload: route on fees and latency, say so.
            logger.warning("router: %s", exc)
            return {}, str(exc) or type(exc).__name__

    @staticmethod
    def _unrouted(reason: str, now: datetime, params: CostModelParams) -> RoutingDecision:
        return RoutingDecision(
            venue=None,
            instrument_key=None,
            venue_type=None,
            listing=None,
            venue_obj=None,
            candidates=(),
            reason=reason,
            decided_at=now,
            parameters=params.to_json(),
        )
