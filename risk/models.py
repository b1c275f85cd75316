"""Risk limits and trading states (kill switches), both with admin history.

Scopes: GLOBAL (key empty), VENUE (venue code), STRATEGY (strategy id), INSTRUMENT (a canonical
key; ``ANY:…`` keys cover the instrument on every venue). Every enabled limit whose scope matches
an order is checked; the tightest one decides.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from odum_live.fields import DecimalField
from odum_live.instruments import InstrumentKeyError, parse_instrument_key


class Scope(models.TextChoices):
    GLOBAL = "GLOBAL"
    VENUE = "VENUE"
    STRATEGY = "STRATEGY"
    INSTRUMENT = "INSTRUMENT"


def _clean_scope_key(scope: str, scope_key: str) -> str:
    if scope == Scope.GLOBAL:
        if scope_key:
            raise ValidationError({"scope_key": "must be empty for the GLOBAL scope"})
        return scope_key
    if not scope_key:
        raise ValidationError({"scope_key": f"required for the {scope} scope"})
    if scope == Scope.INSTRUMENT:
        try:
            parse_instrument_key(scope_key)
        except InstrumentKeyError as exc:
            raise ValidationError({"scope_key": str(exc)}) from None
    return scope_key


class RiskLimit(models.Model):
    """One pre-trade limit. Units by kind are given in :attr:`Kind` labels.

    Quantities: MAX_ORDER_QUANTITY is in the order's own unit (base units; contracts for
    derivatives, as the order is sent). MAX_POSITION_QUANTITY is in **base units of the
    underlying**, because it adds positions and open orders across venues whose contracts differ in
    size: each linear listing's quantity × its contract multiplier (100 OKX BTC-USDT-SWAP contracts
    of 0.01 BTC = 1 BTC). Inverse contracts (quote-denominated: Deribit, Binance COIN-M) count as
    face value ÷ price, at the lower of the order's limit price and its fresh mid, and only for an
    order on an inverse listing; when no such price exists the check denies rather than leave them
    out (``risk.engine``, ``position_limit``).
    """

    class Kind(models.TextChoices):
        MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY", "Max order quantity (base units; contracts for derivatives)"
        MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL", "Max order notional (quote currency)"
        PRICE_COLLAR_BPS = "PRICE_COLLAR_BPS", "Price collar around reference mid (bps)"
        MAX_ORDERS_PER_SECOND = "MAX_ORDERS_PER_SECOND", "Velocity: orders per second"
        MAX_ORDERS_PER_MINUTE = "MAX_ORDERS_PER_MINUTE", "Velocity: orders per minute"
        MAX_POSITION_QUANTITY = (
            "MAX_POSITION_QUANTITY", "Max projected position per instrument (base units of the underlying)"
        )
        MAX_POSITION_NOTIONAL = "MAX_POSITION_NOTIONAL", "Max projected position per instrument (notional)"
        MAX_GROSS_EXPOSURE = "MAX_GROSS_EXPOSURE", "Max gross exposure, positions + open orders (notional)"
        REPEATED_ORDER_WINDOW_SECS = "REPEATED_ORDER_WINDOW_SECS", "Repeated-order throttle window (seconds)"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    scope_key = models.CharField(max_length=128, blank=True, help_text="Venue code, strategy id or instrument key.")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    value = DecimalField(help_text="Limit value, in the unit named by the kind.")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["scope", "scope_key", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_key", "kind"], name="risklimit_unique_scope_kind"),
            models.CheckConstraint(condition=models.Q(value__gte=0), name="risklimit_value_nonnegative"),
        ]
        indexes = [models.Index(fields=["enabled", "scope", "scope_key"], name="risklimit_lookup_idx")]

    def __str__(self) -> str:
        where = f"{self.scope}:{self.scope_key}" if self.scope_key else self.scope
        return f"{where} {self.kind} = {self.value}"

    def clean(self) -> None:
        self.scope_key = _clean_scope_key(self.scope, self.scope_key)
        if self.value is not None and self.value < Decimal("0"):
            raise ValidationError({"value": "must not be negative"})


class TradingState(models.Model):
    """The kill switch of one scope: ACTIVE, REDUCING (only position-reducing orders) or HALTED."""

    class State(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        REDUCING = "REDUCING", "Reduce only"
        HALTED = "HALTED", "Halted"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    scope_key = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    reason = models.TextField(help_text="Why the state was set (required).")
    changed_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["scope", "scope_key"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_key"], name="tradingstate_unique_scope"),
            models.CheckConstraint(condition=~models.Q(reason=""), name="tradingstate_reason_required"),
        ]

    def __str__(self) -> str:
        where = f"{self.scope}:{self.scope_key}" if self.scope_key else self.scope
        return f"{where} {self.state}"

    def clean(self) -> None:
        self.scope_key = _clean_scope_key(self.scope, self.scope_key)
        if not (self.reason or "").strip():
            raise ValidationError({"reason": "a reason is required for every trading-state change"})


class VelocityBucket(models.Model):
    """Order count of one scope in one fixed time window (velocity / message throttle).

    Fixed windows, as venues count them (Binance ``rateLimits`` intervals SECOND / MINUTE).
    Written only by the risk engine, under its lock, in the order's own transaction.
    """

    scope_key = models.CharField(max_length=160, help_text="e.g. 'STRATEGY:demo:1s'.")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope_key", "window_start"], name="velocity_unique_window"),
        ]


class OpenOrderExposure(models.Model):
    """Running totals of risk-accepted open orders per strategy, routed listing and side.

    Why totals and not a SUM over ``orders_order`` at every check: open orders grow with the order
    flow (a benchmark leaves thousands ROUTED), and an aggregate over them costs ~10 ms at 6,400
    rows on PostgreSQL, over the whole submission budget. These rows are bounded by strategies ×
    listings × sides, so the engine reads them in well under a millisecond.

    Writers, always inside the transaction that changes the order:

    - the risk engine adds an order's full quantity when it passes (``dry_run=False``), under its
      serialization lock, in the transaction that then inserts the order;
    - ``orders.exposure.order_exposure_changed`` subtracts what an order stops leaving open (a
      fill, or a terminal status);
    - ``risk.services.open_exposure_rebuild`` recomputes every row from the order table
      (reconciliation).

    A missed subtraction leaves the totals too *high*: the engine then denies more, never less.
    Quantities in base units (contracts for derivatives); ``priced_value`` in quote currency,
    before the contract multiplier. Notional is derived at read time from the listing
    (``venues.Instrument``): linear ``priced_value × multiplier`` plus unpriced (MARKET) quantity at
    the reference mid × multiplier; inverse ``leaves_quantity × multiplier``.
    """

    strategy_id = models.CharField(max_length=64, help_text="Strategy id (no FK: risk does not import orders).")
    instrument_key = models.CharField(max_length=128, help_text="Routed listing (canonical key).")
    side = models.CharField(max_length=10)
    venue = models.CharField(max_length=32, help_text="Venue code of the listing.")
    equivalence_key = models.CharField(max_length=128, help_text="Listing key without venue.")
    leaves_quantity = DecimalField(default=Decimal("0"), help_text="Open quantity, base units.")
    priced_quantity = DecimalField(default=Decimal("0"), help_text="Open quantity of orders with a limit price.")
    priced_value = DecimalField(default=Decimal("0"), help_text="Σ open quantity × limit price, quote currency.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["strategy_id", "instrument_key", "side"], name="openexposure_unique_key"),
        ]
        indexes = [
            models.Index(fields=["equivalence_key"], name="openexposure_equivalence_idx"),
            models.Index(fields=["venue"], name="openexposure_venue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.side} {self.leaves_quantity} {self.instrument_key}"
