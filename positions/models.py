"""Positions per (strategy, venue, instrument listing).

``quantity`` is signed (positive long, negative short) in base units, contracts for derivatives;
prices are in quote currency; PnL and fees are in quote currency for linear instruments and in the
settlement (base) currency for inverse ones. ``realized_pnl`` is net of the fees in (or converted
to) that currency; a fee in a third currency (BNB) is not in it (``positions.maths``, "Fees"). Only
``positions.services`` writes these rows.
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
    fees = DecimalField(default=Decimal("0"), help_text="Fees paid, in the PnL currency.")
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
    """A difference between the OMS and a venue found at reconciliation, recorded, never "fixed".

    Written by :func:`positions.services.reconciliation_record`; shown in health and admin. A finding
    is resolved when a later reconciliation finds the two sides agree again.
    """

    class Kind(models.TextChoices):
        POSITION_MISMATCH = "POSITION_MISMATCH", "Position differs from the venue's"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    venue = models.CharField(max_length=32)
    instrument_key = models.CharField(max_length=128)
    oms_quantity = DecimalField(help_text="Net quantity the OMS holds over all strategies, base units.")
    venue_quantity = DecimalField(help_text="Net quantity the venue (the node's view of it) reports, base units.")
    detail = models.TextField(blank=True)
    found_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-found_at", "id"]
        indexes = [models.Index(fields=["venue", "instrument_key", "resolved_at"], name="finding_open_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.venue} {self.instrument_key}: OMS {self.oms_quantity} vs venue {self.venue_quantity}"


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
