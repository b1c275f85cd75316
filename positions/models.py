"""Positions per (strategy, venue, instrument listing).

``quantity`` is signed (positive long, negative short) in base units, contracts for derivatives;
prices are in quote currency; PnL and fees are in quote currency for linear instruments and in the
settlement (base) currency for inverse ones. ``realized_pnl`` is net of ``fees``: the fees paid in
that currency and those paid in the pair's other currency, converted at their fill's price. A fee in
a third currency (BNB) has no such rate: it is kept in ``other_fees``, in its own currency, and is
not in ``realized_pnl`` (``positions.maths``, "Fees"). Only ``positions.services`` writes these rows.
"""

from decimal import Decimal

from django.db import models

from odum_live.fields import DecimalField


class Position(models.Model):
    """A net position of one strategy in one instrument listing on one venue."""

    strategy = models.ForeignKey("orders.Strategy", on_delete=models.PROTECT, related_name="positions")
    venue = models.CharField(max_length=32)
    instrument_key = models.CharField(max_length=128, help_text="Canonical key of the listing.")
    equivalence_key = models.CharField(max_length=128, help_text="Key without venue, for cross-venue aggregation.")
    quantity = DecimalField(default=Decimal("0"), help_text="Signed quantity: base units (contracts for derivatives).")
    avg_entry_price = DecimalField(null=True, blank=True, help_text="Average entry price in quote currency.")
    realized_pnl = DecimalField(default=Decimal("0"), help_text="Realized PnL net of fees: quote currency (settlement currency for inverse contracts).")
    unrealized_pnl = DecimalField(default=Decimal("0"), help_text="Unrealized PnL at mark: quote currency (settlement currency for inverse contracts).")
    mark_price = DecimalField(null=True, blank=True)
    fees = DecimalField(default=Decimal("0"), help_text="Fees paid, in the PnL currency (those paid in the pair's "
                        "other currency converted at their fill price); realized PnL is net of them.")
    other_fees = models.JSONField(default=dict, blank=True, help_text=(
        "Fees paid in a third currency (neither the PnL currency nor the pair's other one, e.g. BNB), per "
        "currency: {currency: decimal text}. Never converted (no rate is known), so not in fees or realized PnL."))
    marked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument_key", "venue", "strategy"]
        constraints = [
            models.UniqueConstraint(fields=["instrument_key", "venue", "strategy"], name="position_unique_listing_strategy"),
        ]
        indexes = [models.Index(fields=["equivalence_key"], name="position_equivalence_idx"),
                   models.Index(fields=["strategy", "equivalence_key"], name="position_strategy_equiv_idx")]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.instrument_key} {self.quantity}"


class ReconciliationFinding(models.Model):
    """A difference between the OMS and a venue, recorded and shown, never "fixed" with invented fills.

    Written only by :mod:`positions.services`; shown in health (``/api/health``, ``/status``, the
    ``status`` command: amber while any is open) and in the admin (read-only, with an action to mark
    findings resolved). Kinds:

    - ``POSITION_MISMATCH`` (:func:`positions.services.reconciliation_record`, at node start): the
      OMS's net position in a listing (all strategies) differs from the venue's as the node holds it.
      One open finding per listing, updated while the difference lasts, resolved (``resolved_at``)
      by a later reconciliation that finds the two agree.
    - ``EXTERNAL_FILL`` (:func:`positions.services.reconciliation_record_external_fill`, while the
      node runs): a fill on the node's account of an order the OMS did not originate — a venue
      liquidation / ADL / insurance-fund, settlement or delivery auto-close, or an order placed by
      hand on the same account (NautilusTrader's EXTERNAL orders, nautilus_trader/live/
      execution_engine.py ``_generate_order``), or a fill from the node of an order the OMS holds no
      record of (``detail`` says "unknown client_order_id"). The fill changed the venue's position, not the
      OMS's: no strategy's position is booked from it. One finding per trade (venue, listing,
      trade id; a re-delivery is a no-op), with the fill's ``side``, ``quantity``, ``price``,
      ``trade_id``, the venue's ``client_order_id`` / ``venue_order_id`` and ``filled_at``;
      ``oms_quantity`` is the OMS's net position when it was recorded and ``venue_quantity`` the
      venue's right after the fill (the node's view), so the two show the listing's position break.
      The operator checks the trade at the venue, decides what the strategies' positions should be
      (e.g. flatten the rest at the venue, or leave it), then marks the finding resolved in the
      admin; the next node start also records the listing's break as a POSITION_MISMATCH until the
      OMS and the venue agree again.
    """

    class Kind(models.TextChoices):
        POSITION_MISMATCH = "POSITION_MISMATCH", "Position differs from the venue's"
        EXTERNAL_FILL = "EXTERNAL_FILL", "Fill of an order the OMS did not originate"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    venue = models.CharField(max_length=32)
    instrument_key = models.CharField(max_length=128)
    oms_quantity = DecimalField(help_text="Net quantity the OMS holds over all strategies, base units.")
    venue_quantity = DecimalField(help_text="Net quantity the venue (the node's view of it) reports, base units.")
    side = models.CharField(max_length=4, blank=True, help_text="EXTERNAL_FILL: BUY or SELL.")
    quantity = DecimalField(null=True, blank=True, help_text="EXTERNAL_FILL: the fill's quantity, base units.")
    price = DecimalField(null=True, blank=True, help_text="EXTERNAL_FILL: the fill's price, quote currency.")
    trade_id = models.CharField(max_length=128, blank=True, help_text="EXTERNAL_FILL: the venue's trade id.")
    client_order_id = models.CharField(max_length=128, blank=True,
                                       help_text="EXTERNAL_FILL: the venue's client order id of the order filled.")
    venue_order_id = models.CharField(max_length=128, blank=True,
                                      help_text="EXTERNAL_FILL: the venue's order id of the order filled.")
    filled_at = models.DateTimeField(null=True, blank=True, help_text="EXTERNAL_FILL: the venue's fill time (UTC).")
    detail = models.TextField(blank=True)
    found_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-found_at", "id"]
        indexes = [models.Index(fields=["venue", "instrument_key", "resolved_at"], name="finding_open_idx")]
        constraints = [
            # One finding per side of an external trade: a fill's identity, as orders.models.Fill's.
            models.UniqueConstraint(fields=["venue", "instrument_key", "trade_id", "side"],
                                    condition=models.Q(kind="EXTERNAL_FILL"), name="finding_external_fill_unique"),
        ]

    def __str__(self) -> str:
        text = f"{self.kind} {self.venue} {self.instrument_key}: OMS {self.oms_quantity} vs venue {self.venue_quantity}"
        if self.kind == self.Kind.EXTERNAL_FILL:
            text += f" ({self.external_fill_text()})"
        return text

    def external_fill_text(self) -> str:
        """Return the external fill in words: side, quantity @ price, trade, order and time."""
        quantity = "-" if self.quantity is None else f"{self.quantity.normalize():f}"
        price = "-" if self.price is None else f"{self.price.normalize():f}"
        when = "-" if self.filled_at is None else f"{self.filled_at:%Y-%m-%d %H:%M:%S}Z"
        return (f"external fill {self.side} {quantity} @ {price}, trade {self.trade_id}, "
                f"order {self.client_order_id or '-'}, at {when}")


class PositionSnapshot(models.Model):
    """One position's figures at one time: the history behind the equity / PnL curve.

    Written only by :func:`positions.services.position_snapshot_record`: with every applied fill
    (in the fill's transaction; at the fill's time, or at the position's latest snapshot time when a
    fill is booked after a later one, so that a snapshot holds every fill booked before it) and from
    marks at most every ``ODUM['EQUITY_SNAPSHOT_SECS']`` per listing. The curve at a time is the
    sum, over positions, of each one's latest snapshot up to that time
    (:func:`positions.selectors.equity_curve`). PnL is in the position's PnL currency (quote
    currency; settlement currency for inverse contracts).
    """

    position = models.ForeignKey(Position, on_delete=models.CASCADE, related_name="snapshots")
    ts = models.DateTimeField(help_text="Time of the fill or mark the figures are as of (UTC).")
    quantity = DecimalField(help_text="Signed quantity: base units (contracts for derivatives).")
    mark_price = DecimalField(null=True, blank=True, help_text="Mark price in quote currency, if marked.")
    realized_pnl = DecimalField(help_text="Realized PnL net of fees, PnL currency.")
    unrealized_pnl = DecimalField(help_text="Unrealized PnL at mark, PnL currency.")

    class Meta:
        ordering = ["ts", "id"]
        indexes = [models.Index(fields=["position", "ts"], name="snapshot_position_ts_idx"),
                   models.Index(fields=["ts"], name="snapshot_ts_idx")]

    def __str__(self) -> str:
        return f"{self.position_id} @ {self.ts:%Y-%m-%d %H:%M:%S}: {self.realized_pnl} + {self.unrealized_pnl}"
