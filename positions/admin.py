"""Admin for positions and reconciliation findings: read-only (only ``positions.services`` writes them).

Findings have one action, "Mark resolved", for those with ``positions.change_reconciliationfinding``
(risk managers): it calls :func:`positions.services.reconciliation_findings_resolve`.
"""

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery

from odum_live.admin import ReadOnlyAdminMixin, decimal_column
from positions.models import Position, ReconciliationFinding
from positions.selectors import listing_pnl_currency
from positions.services import reconciliation_findings_resolve
from positions.templatetags.positions_ui import fee_amounts
from venues.models import Instrument

#: The listing's fields the PnL currency is read from (annotated on each row as ``listing_<field>``).
_LISTING_CURRENCY_FIELDS = ("is_inverse", "base_currency", "quote_currency", "settlement_currency")


@admin.register(Position)
class PositionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Net position per strategy and listing, with PnL at the last mark.

    PnL and fees are in the row's PnL currency (its own column): the quote currency, the settlement
    currency for inverse contracts (``positions.selectors.listing_pnl_currency``, as the positions
    page says it) — rows of different currencies are not comparable amounts. Fees paid in a third
    currency (BNB) are in their own column, each amount with its currency: they are in no PnL.
    """

    # Compact decimal displays (0.004, not 0.004000000000000000), for the list and the page.
    quantity_ = decimal_column("quantity", "quantity (base units, signed)")
    avg_entry_price_ = decimal_column("avg_entry_price", "avg entry price")
    mark_price_ = decimal_column("mark_price", "mark price")
    unrealized_pnl_ = decimal_column("unrealized_pnl", "unrealized PnL")
    realized_pnl_ = decimal_column("realized_pnl", "realized PnL")
    fees_ = decimal_column("fees")

    @admin.display(description="fees in other currencies (in no PnL)")
    def other_fees_(self, position: Position) -> str:
        return fee_amounts(position.other_fees) or "—"

    @admin.display(description="PnL currency")
    def pnl_currency_(self, position: Position) -> str:
        return listing_pnl_currency(
            instrument_key=position.instrument_key, is_inverse=position.listing_is_inverse,
            base=position.listing_base_currency or "", quote=position.listing_quote_currency or "",
            settlement=position.listing_settlement_currency or "")

    def get_queryset(self, request):
        # The listing's currencies with each row (one query for the page, not one per row).
        listing = Instrument.objects.filter(instrument_key=OuterRef("instrument_key"))
        return super().get_queryset(request).annotate(**{
            f"listing_{name}": Subquery(listing.values(name)[:1]) for name in _LISTING_CURRENCY_FIELDS})

    list_display = [
        "strategy",
        "venue",
        "instrument_key",
        "quantity_",
        "avg_entry_price_",
        "mark_price_",
        "unrealized_pnl_",
        "realized_pnl_",
        "fees_",
        "other_fees_",
        "pnl_currency_",
        "marked_at",
        "updated_at",
    ]
    list_filter = ["venue", "strategy"]
    search_fields = ["instrument_key", "equivalence_key", "strategy__id"]
    readonly_fields = ["quantity_", "avg_entry_price_", "mark_price_", "unrealized_pnl_", "realized_pnl_", "fees_",
                       "other_fees_", "pnl_currency_"]
    fields = [
        "strategy",
        "venue",
        "instrument_key",
        "equivalence_key",
        "quantity_",
        "avg_entry_price_",
        "mark_price_",
        "unrealized_pnl_",
        "realized_pnl_",
        "fees_",
        "other_fees_",
        "pnl_currency_",
        "marked_at",
        "updated_at",
    ]


@admin.register(ReconciliationFinding)
class ReconciliationFindingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Differences between the OMS and a venue (model docstring: the kinds, what an operator does).

    Open findings first by default filter; "Mark resolved" closes the selected ones once a person has
    dealt with them (an EXTERNAL_FILL is never resolved by itself).
    """

    oms_quantity_ = decimal_column("oms_quantity", "OMS quantity (base units, signed)")
    venue_quantity_ = decimal_column("venue_quantity", "venue quantity (base units, signed)")
    quantity_ = decimal_column("quantity", "fill quantity")
    price_ = decimal_column("price", "fill price")

    list_display = ["kind", "venue", "instrument_key", "oms_quantity_", "venue_quantity_", "side", "quantity_",
                    "price_", "trade_id", "client_order_id", "filled_at", "found_at", "resolved_at"]
    list_filter = ["kind", "venue", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["instrument_key", "trade_id", "client_order_id", "venue_order_id"]
    readonly_fields = ["oms_quantity_", "venue_quantity_", "quantity_", "price_"]
    fields = ["kind", "venue", "instrument_key", "oms_quantity_", "venue_quantity_", "side", "quantity_", "price_",
              "trade_id", "client_order_id", "venue_order_id", "filled_at", "detail", "found_at", "resolved_at"]
    actions = ["mark_resolved"]

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm("positions.change_reconciliationfinding")

    @admin.action(description="Mark the selected findings resolved", permissions=["resolve"])
    def mark_resolved(self, request, queryset):
        """Resolve the selected open findings (already resolved ones keep their time)."""
        count = reconciliation_findings_resolve(finding_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} finding(s) marked resolved", messages.SUCCESS)
