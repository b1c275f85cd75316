"""Admin for positions: read-only (only ``positions.services`` writes them, from fills)."""

from django.contrib import admin

from odum_live.admin import ReadOnlyAdminMixin, decimal_column
from positions.models import Position


@admin.register(Position)
class PositionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Net position per strategy and listing, with PnL at the last mark (quote currency)."""

    # Compact decimal displays (0.004, not 0.004000000000000000), for the list and the page.
    quantity_ = decimal_column("quantity", "quantity (base units, signed)")
    avg_entry_price_ = decimal_column("avg_entry_price", "avg entry price")
    mark_price_ = decimal_column("mark_price", "mark price")
    unrealized_pnl_ = decimal_column("unrealized_pnl", "unrealized PnL")
    realized_pnl_ = decimal_column("realized_pnl", "realized PnL")
    fees_ = decimal_column("fees")

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
        "marked_at",
        "updated_at",
    ]
    list_filter = ["venue", "strategy"]
    search_fields = ["instrument_key", "equivalence_key", "strategy__id"]
    readonly_fields = ["quantity_", "avg_entry_price_", "mark_price_", "unrealized_pnl_", "realized_pnl_", "fees_"]
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
        "marked_at",
        "updated_at",
    ]
