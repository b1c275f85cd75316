"""Strategies, orders (the seeds' unified schema), fills and the order timeline.

Money and quantities are ``NUMERIC(36,18)`` decimals: quantity in base units (contracts for
derivatives), price in quote currency, fees in ``fee_currency``. Times are UTC. Only the
services in ``orders/services`` write these rows (CONVENTIONS.md, "Where code goes").
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

from odum_live.decimals import plain_decimal
from odum_live.fields import DecimalField
from odum_live.ids import client_order_id_for, uuid7
from orders.state import OrderStatus, check_transition


class Strategy(models.Model):
    """A trading strategy: the owner of orders and positions.

    A strategy service authenticates as ``service_account`` with API tokens (knox, hashed at
    rest); people may trade it when listed in ``traders`` or holding ``orders.trade_any_strategy``.
    """

    id = models.SlugField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True)
    service_account = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="service_strategy"
    )
    traders = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="tradable_strategies")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "strategies"
        permissions = [("trade_any_strategy", "Can submit and cancel orders for any strategy")]

    def __str__(self) -> str:
        return self.id


class Order(models.Model):
    """One order: the seeds' unified order message plus the server-owned lifecycle fields."""

    class Operation(models.TextChoices):
        TRADE = "trade"
        SUPPLY = "supply"
        BORROW = "borrow"
        STAKE = "stake"
        WITHDRAW = "withdraw"
        SWAP = "swap"
        TRANSFER = "transfer"
        BET = "bet"

    Status = models.TextChoices("Status", [(s.value, s.value) for s in OrderStatus])

    class Side(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"
        SUPPLY = "SUPPLY"
        BORROW = "BORROW"
        STAKE = "STAKE"
        WITHDRAW = "WITHDRAW"
        BACK = "BACK"
        LAY = "LAY"

    class OrderType(models.TextChoices):
        MARKET = "MARKET"
        LIMIT = "LIMIT"

    class TimeInForce(models.TextChoices):
        GTC = "GTC", "Good till canceled"
        IOC = "IOC", "Immediate or cancel"
        FOK = "FOK", "Fill or kill"
        GTD = "GTD", "Good till date"

    class ExecAlgorithm(models.TextChoices):
        NORMAL = "NORMAL"
        TWAP = "TWAP"
        VWAP = "VWAP"
        ICEBERG = "ICEBERG"

    class VenueType(models.TextChoices):
        NAUTILUS = "NAUTILUS"
        EXTERNAL_SDK = "EXTERNAL_SDK"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="orders")
    operation_id = models.CharField(max_length=128)
    client_order_id = models.CharField(max_length=36, unique=True, editable=False)
    operation = models.CharField(max_length=16, choices=Operation.choices, default=Operation.TRADE)
    instrument_key = models.CharField(max_length=128, help_text="Canonical instrument key as requested (may be ANY:…).")
    venue = models.CharField(max_length=32, blank=True, help_text="Venue code chosen by the router.")
    routed_instrument_key = models.CharField(max_length=128, blank=True, help_text="Listing the order was routed to.")
    venue_type = models.CharField(max_length=16, choices=VenueType.choices, blank=True)
    venue_order_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=OrderStatus.PENDING)
    side = models.CharField(max_length=10, choices=Side.choices)
    order_type = models.CharField(max_length=10, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    expire_time = models.DateTimeField(null=True, blank=True)
    quantity = DecimalField()
    price = DecimalField(null=True, blank=True)
    filled_quantity = DecimalField(default=Decimal("0"))
    avg_fill_price = DecimalField(null=True, blank=True)
    fees = DecimalField(default=Decimal("0"))
    exec_algorithm = models.CharField(max_length=10, choices=ExecAlgorithm.choices, default=ExecAlgorithm.NORMAL)
    exec_algorithm_params = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # DeFi
    tx_hash = models.CharField(max_length=80, blank=True)
    gas_used = DecimalField(null=True, blank=True)
    gas_price_gwei = DecimalField(null=True, blank=True)
    contract_address = models.CharField(max_length=80, blank=True)
    source_token = models.CharField(max_length=32, blank=True)
    target_token = models.CharField(max_length=32, blank=True)
    max_slippage = DecimalField(null=True, blank=True, help_text="Maximum slippage as a fraction (0.005 = 50 bps).")
    # Atomic groups
    atomic_group_id = models.CharField(max_length=128, blank=True)
    sequence_in_group = models.PositiveIntegerField(null=True, blank=True)
    # Sports
    odds = DecimalField(null=True, blank=True)
    selection = models.CharField(max_length=200, blank=True)
    potential_payout = DecimalField(null=True, blank=True)
    # Transfers
    source_venue = models.CharField(max_length=32, blank=True)
    target_venue = models.CharField(max_length=32, blank=True)
    expected_deltas = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Server-owned decisions and outcome
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    risk_result = models.JSONField(default=dict, blank=True)
    routing_decision = models.JSONField(default=dict, blank=True)
    rejection_reason = models.TextField(blank=True)
    error_message = models.TextField(blank=True)
    created_by = models.CharField(max_length=150, blank=True, help_text="Actor that submitted the order.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="Last hand-off to the venue queue.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "operation_id"], name="order_unique_operation_per_strategy"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=models.Q(filled_quantity__gte=0), name="order_filled_nonnegative"),
        ]
        indexes = [
            models.Index(fields=["strategy"], name="order_strategy_idx"),
            models.Index(fields=["created_at"], name="order_created_idx"),
            models.Index(fields=["status", "strategy"], name="order_status_strategy_idx"),
            models.Index(fields=["venue", "status"], name="order_venue_status_idx"),
            models.Index(fields=["instrument_key"], name="order_instrument_idx"),
            models.Index(fields=["operation"], name="order_operation_idx"),
            models.Index(fields=["atomic_group_id"], name="order_atomic_group_idx"),
            models.Index(fields=["tx_hash"], name="order_tx_hash_idx"),
            models.Index(fields=["operation", "status"], name="order_operation_status_idx"),
            models.Index(fields=["strategy", "routed_instrument_key", "side", "created_at"], name="order_repeat_idx"),
        ]

    def __str__(self) -> str:
        quantity = plain_decimal(self.quantity)  # 0.04, not NUMERIC(36,18)'s 0.040000000000000000
        return f"{self.client_order_id} {self.side} {quantity} {self.instrument_key} [{self.status}]"

    def save(self, *args, **kwargs):
        self.set_client_order_id()
        super().save(*args, **kwargs)

    def set_client_order_id(self) -> None:
        """Derive ``client_order_id`` from the order id when unset (every INSERT path calls it)."""
        if not self.client_order_id:
            self.client_order_id = client_order_id_for(self.id)

    @property
    def leaves_quantity(self) -> Decimal:
        """Quantity still open, in base units (FIX LeavesQty); zero once terminal."""
        from orders.state import TERMINAL_STATUSES

        if self.status in TERMINAL_STATUSES:
            return Decimal("0")
        return self.quantity - self.filled_quantity

    def transition_to(self, status: str) -> None:
        """Set ``status`` after checking the state machine (the one place transitions are decided).

        Raises
        ------
        orders.state.IllegalTransition
        """
        check_transition(self.status, status, filled_quantity_positive=self.filled_quantity > 0)
        self.status = status


class Fill(models.Model):
    """An execution (FIX ExecutionReport with a trade): unique on (venue, listing, venue trade id, side).

    ``instrument_key`` is the listing the fill was traded on: its order's ``routed_instrument_key``
    (an algorithm's child has its parent's). It belongs to a fill's identity because venues number
    trades per symbol, not per venue: Binance spot and USD-M futures take the trade id from the
    user stream's ``executionReport`` / ``ORDER_TRADE_UPDATE`` field ``t`` and from ``myTrades`` /
    ``userTrades``' ``id`` (NautilusTrader 1.221 ``adapters/binance/spot/schemas/user.py``,
    ``futures/schemas/user.py``, ``common/schemas/account.py``: ``TradeId(str(self.t))``,
    ``TradeId(str(self.id))``) — a sequence per symbol (Binance API: ``myTrades`` takes ``symbol``
    and a ``fromId`` in that symbol's trade ids). OKX's ``tradeId`` of an order / fill push is per
    instrument (``instId``) too (OKX API v5; NautilusTrader's OKX adapter passes it through from its
    Rust parser: ``adapters/okx/execution.py``, ``FillReport.from_pyo3``). So BTCUSDT trade 123456
    and ETHUSDT trade 123456 are two executions. Bybit's ``execId`` is a UUID
    (``adapters/bybit/execution.py``: ``TradeId(execution.execId)``) and the paper venues' trade
    ids are random UUIDs: the listing changes nothing for them. NautilusTrader itself refuses a
    repeated trade id only within one order (``model/orders/base.pyx``, ``Order.apply``).

    ``side`` is the side of the trade the fill is (:func:`orders.fills.trade_side` of its order's
    side: BUY for the buy-like sides, SELL for the sell-like ones). It belongs to the identity because a
    trade has exactly one buyer and one seller, and when two of our orders trade with each other (a
    self-trade: a BUY of one strategy against a SELL of another on the same listing) Binance and OKX
    report the same trade id to both orders (Binance ``executionReport`` ``t`` / ``myTrades`` ``id``
    with ``isBuyer``; OKX ``tradeId`` with ``side``): two fills, one per side.
    """

    class TradeSide(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"

    class Liquidity(models.TextChoices):
        MAKER = "MAKER"
        TAKER = "TAKER"
        UNKNOWN = "UNKNOWN"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    venue = models.CharField(max_length=32)
    instrument_key = models.CharField(max_length=128, help_text="Listing the fill was traded on (canonical key).")
    venue_trade_id = models.CharField(max_length=128, help_text="The venue's trade id: unique per listing and side.")
    side = models.CharField(max_length=4, choices=TradeSide.choices,
                            help_text="Side of the trade: BUY (buy-like order sides) or SELL (sell-like ones).")
    price = DecimalField(help_text="Execution price in quote currency.")
    quantity = DecimalField(help_text="Executed quantity in base units.")
    fee = DecimalField(default=Decimal("0"))
    fee_currency = models.CharField(max_length=16, blank=True)
    liquidity = models.CharField(max_length=8, choices=Liquidity.choices, default=Liquidity.UNKNOWN)
    ts_event = models.DateTimeField(help_text="Venue execution time (UTC).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ts_event", "id"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "instrument_key", "venue_trade_id", "side"],
                                    name="fill_unique_venue_listing_trade_side"),
            models.CheckConstraint(condition=~models.Q(instrument_key=""), name="fill_instrument_key_set"),
            models.CheckConstraint(condition=models.Q(side__in=["BUY", "SELL"]), name="fill_side_buy_or_sell"),
        ]

    def __str__(self) -> str:
        return f"{self.venue}:{self.venue_trade_id} {plain_decimal(self.quantity)}@{plain_decimal(self.price)}"


class OrderEvent(models.Model):
    """One entry of an order's timeline: what happened, by whom, with its figures."""

    class Type(models.TextChoices):
        RECEIVED = "RECEIVED"
        RISK_PASSED = "RISK_PASSED"
        DENIED = "DENIED"
        ROUTED = "ROUTED"
        DISPATCHED = "DISPATCHED"
        DISPATCH_FAILED = "DISPATCH_FAILED"
        VENUE_RECEIVED = "VENUE_RECEIVED"
        SUBMITTED = "SUBMITTED"
        ACCEPTED = "ACCEPTED"
        REJECTED = "REJECTED"
        PARTIALLY_FILLED = "PARTIALLY_FILLED"
        FILLED = "FILLED"
        CANCEL_REQUESTED = "CANCEL_REQUESTED"
        CANCEL_REJECTED = "CANCEL_REJECTED"
        CANCELED = "CANCELED"
        EXPIRED = "EXPIRED"
        IGNORED = "IGNORED"
        RECONCILED = "RECONCILED"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=20, choices=Type.choices)
    status_before = models.CharField(max_length=20, blank=True)
    status_after = models.CharField(max_length=20, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="User, strategy service or component.")
    ts = models.DateTimeField(help_text="When it happened (UTC).")

    class Meta:
        ordering = ["ts", "id"]
        indexes = [models.Index(fields=["order", "ts"], name="orderevent_order_ts_idx"),
                   models.Index(fields=["ts"], name="orderevent_ts_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.ts:%H:%M:%S.%f}"
