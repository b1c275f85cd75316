"""Admin for strategies, orders, fills and the order timeline.

Orders, fills and events are written only by the order services (CONVENTIONS.md, "Where code
goes"), so their admin is for inspection: every field is read-only and nothing can be added or
deleted here. Status, fills, venue ids, filled quantity, the risk result and the routing decision
are never hand-edited; a cancel goes through the API or the order ticket, which call the service.
"""

import uuid

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from odum_live.admin import ReadOnlyAdminMixin, decimal_column, format_decimal, pretty_json
from orders.formatting import fmt_fees
from orders.models import Fill, Order, OrderEvent, Strategy
from orders.selectors import order_family_fills


# --- Strategy ---------------------------------------------------------------------------------
@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    """Strategies with their service account (API tokens) and the traders allowed to trade them."""

    list_display = ["id", "name", "enabled", "service_account", "trader_names", "created_at"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    search_fields = ["id", "name", "service_account__username", "traders__username"]
    filter_horizontal = ["traders"]
    raw_id_fields = ["service_account"]
    readonly_fields = ["api_tokens", "created_at"]
    fields = ["id", "name", "enabled", "service_account", "api_tokens", "traders", "config", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("service_account").prefetch_related("traders")

    def get_readonly_fields(self, request, obj=None):
        """The id is the strategy's key in orders and positions: fixed once created."""
        fields = list(super().get_readonly_fields(request, obj))
        return ["id", *fields] if obj is not None else fields

    @admin.display(description="traders")
    def trader_names(self, obj: Strategy) -> str:
        """Comma-separated user names of the strategy's traders."""
        return ", ".join(sorted(u.get_username() for u in obj.traders.all())) or "—"

    @admin.display(description="API tokens")
    def api_tokens(self, obj: Strategy) -> str:
        """Count of the service account's live tokens, linking to knox's admin, where they are revoked."""
        if obj is None or obj.service_account_id is None:
            return "no service account (manage.py issue_api_token creates one)"
        count = obj.service_account.auth_token_set.count()
        url = reverse("admin:knox_authtoken_changelist") + f"?q={obj.service_account.get_username()}"
        return format_html(
            '<a href="{}">{} token(s)</a> — issue one with <code>manage.py issue_api_token {}</code>',
            url,
            count,
            obj.pk,
        )


# --- Orders -----------------------------------------------------------------------------------
class FillInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The order's executions, oldest first."""

    model = Fill
    extra = 0
    fields = ["ts_event", "venue", "venue_trade_id", "quantity_", "price_", "fee_", "fee_currency", "liquidity"]
    readonly_fields = fields
    quantity_ = decimal_column("quantity")
    price_ = decimal_column("price")
    fee_ = decimal_column("fee")


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The order's timeline: what happened, status before → after, by whom."""

    model = OrderEvent
    extra = 0
    fields = ["ts", "type", "status_before", "status_after", "actor", "payload_pretty"]
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_pretty(self, obj: OrderEvent) -> str:
        return pretty_json(obj.payload)


class ChildOrderInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Child orders (slices) of an execution algorithm's parent order."""

    model = Order
    fk_name = "parent"
    extra = 0
    verbose_name = "child order"
    verbose_name_plural = "child orders (algorithm slices)"
    fields = ["client_order_id", "status", "side", "quantity_", "price_", "filled_quantity_", "venue", "created_at"]
    readonly_fields = fields
    show_change_link = True
    quantity_ = decimal_column("quantity")
    price_ = decimal_column("price")
    filled_quantity_ = decimal_column("filled_quantity", "filled quantity")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Orders for inspection: filters, search by id / operation_id / client_order_id, fills and events inline."""

    list_display = [
        "client_order_id",
        "created_at",
        "strategy",
        "side",
        "quantity_",
        "instrument_key",
        "order_type",
        "price_",
        "status",
        "filled_quantity_",
        "venue",
        "exec_algorithm",
    ]
    list_filter = ["status", "venue", "strategy", "side", "exec_algorithm", "order_type", "operation"]
    search_fields = ["=operation_id", "=client_order_id", "=venue_order_id"]
    search_help_text = "Order id (UUID), operation_id, client_order_id or venue_order_id (exact)."
    date_hierarchy = "created_at"
    show_full_result_count = False  # the order table grows without bound: no COUNT(*) per page
    inlines = [FillInline, OrderEventInline, ChildOrderInline]
    # Decimal fields are shown through compact displays (``quantity_`` …: 0.001, not 0.001000…).
    quantity_ = decimal_column("quantity")
    price_ = decimal_column("price")
    filled_quantity_ = decimal_column("filled_quantity", "filled quantity")
    avg_fill_price_ = decimal_column("avg_fill_price", "avg fill price")
    gas_used_ = decimal_column("gas_used", "gas used")
    gas_price_gwei_ = decimal_column("gas_price_gwei", "gas price (gwei)")
    max_slippage_ = decimal_column("max_slippage", "max slippage")
    odds_ = decimal_column("odds")
    potential_payout_ = decimal_column("potential_payout", "potential payout")

    @admin.display(description="fees")
    def fees_(self, order):
        # Per fee currency from the family's fills (the stored Order.fees adds currencies alike).
        return fmt_fees(order_family_fills(order=order).fee_totals)
    readonly_fields = [
        "quantity_", "price_", "filled_quantity_", "avg_fill_price_", "fees_", "gas_used_", "gas_price_gwei_",
        "max_slippage_", "odds_", "potential_payout_", "leaves_quantity", "risk_result_pretty",
        "routing_decision_pretty", "expected_deltas_pretty",
    ]
    fieldsets = [
        (
            "Request",
            {
                "fields": [
                    "id",
                    "strategy",
                    "operation_id",
                    "operation",
                    "instrument_key",
                    "side",
                    "order_type",
                    "time_in_force",
                    "expire_time",
                    "quantity_",
                    "price_",
                    "exec_algorithm",
                    "exec_algorithm_params",
                    "parent",
                    "metadata",
                    "created_by",
                ]
            },
        ),
        (
            "Status and fills",
            {
                "fields": [
                    "status",
                    "filled_quantity_",
                    "leaves_quantity",
                    "avg_fill_price_",
                    "fees_",
                    "rejection_reason",
                    "error_message",
                ]
            },
        ),
        ("Pre-trade risk", {"fields": ["risk_result_pretty"]}),
        (
            "Routing and venue",
            {
                "fields": [
                    "routing_decision_pretty",
                    "venue",
                    "routed_instrument_key",
                    "venue_type",
                    "client_order_id",
                    "venue_order_id",
                ]
            },
        ),
        (
            "Times (UTC)",
            {"fields": ["created_at", "dispatched_at", "submitted_at", "accepted_at", "closed_at", "updated_at"]},
        ),
        (
            "DeFi, atomic groups, sports, transfers",
            {
                "classes": ["collapse"],
                "fields": [
                    "tx_hash",
                    "gas_used_",
                    "gas_price_gwei_",
                    "contract_address",
                    "source_token",
                    "target_token",
                    "max_slippage_",
                    "atomic_group_id",
                    "sequence_in_group",
                    "odds_",
                    "selection",
                    "potential_payout_",
                    "source_venue",
                    "target_venue",
                    "expected_deltas_pretty",
                ],
            },
        ),
    ]

    def get_search_results(self, request, queryset, search_term):
        """Match a pasted order id (UUID) exactly, besides the ``search_fields`` lookups."""
        term = search_term.strip()
        try:
            order_id = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=order_id), False

    @admin.display(description="leaves quantity")
    def leaves_quantity(self, obj: Order) -> str:
        return format_decimal(obj.leaves_quantity)

    @admin.display(description="risk result")
    def risk_result_pretty(self, obj: Order) -> str:
        return pretty_json(obj.risk_result)

    @admin.display(description="routing decision")
    def routing_decision_pretty(self, obj: Order) -> str:
        return pretty_json(obj.routing_decision)

    @admin.display(description="expected deltas")
    def expected_deltas_pretty(self, obj: Order) -> str:
        return pretty_json(obj.expected_deltas)


@admin.register(Fill)
class FillAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every execution across orders: search by venue trade id or the order's ids."""

    list_display = [
        "ts_event",
        "venue",
        "instrument_key",  # a trade id is unique per listing and side, not per venue (orders.models.Fill)
        "venue_trade_id",
        "side",  # a self-trade's two fills share the trade id
        "order_link",
        decimal_column("quantity"),
        decimal_column("price"),
        decimal_column("fee"),
        "fee_currency",
        "liquidity",
    ]
    list_filter = ["venue", "side", "liquidity", "order__strategy"]
    search_fields = ["=venue_trade_id", "=order__client_order_id", "=order__operation_id"]
    date_hierarchy = "ts_event"
    list_select_related = ["order"]
    show_full_result_count = False

    @admin.display(description="order", ordering="order__client_order_id")
    def order_link(self, obj: Fill) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.client_order_id)


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The execution log across orders, newest first."""

    list_display = ["ts", "type", "order_link", "status_before", "status_after", "actor"]
    list_filter = ["type", "order__strategy"]
    search_fields = ["=order__client_order_id", "=order__operation_id", "actor"]
    date_hierarchy = "ts"
    ordering = ["-ts", "-id"]
    list_select_related = ["order"]
    show_full_result_count = False
    readonly_fields = ["payload_pretty"]
    fields = ["order", "ts", "type", "status_before", "status_after", "actor", "payload_pretty"]

    @admin.display(description="order", ordering="order__client_order_id")
    def order_link(self, obj: OrderEvent) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.client_order_id)

    @admin.display(description="payload")
    def payload_pretty(self, obj: OrderEvent) -> str:
        return pretty_json(obj.payload)

