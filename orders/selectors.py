"""Reads of orders, and who may see and trade what (object-level scoping, BOLA).

Access rules
------------
- A **strategy service** (a user that is some ``Strategy.service_account``) sees and trades only
  its own strategy — whatever permissions the account has.
- A **person** holding ``orders.view_order`` (traders' desk, risk managers) sees every order;
  otherwise they see the orders of the strategies they are listed on (``Strategy.traders``).
- A person may trade a strategy when listed in its ``traders`` or holding
  ``orders.trade_any_strategy``. To **submit** an order (or ask the what-if) they need
  ``orders.add_order`` as well, to **cancel** one ``orders.change_order`` (:data:`TRADE_PERMISSIONS`).
  One policy for the API, the pages and the command line: :meth:`OrderAccess.trade_refusal`
  (the lead's decision, session 14).

An order outside the caller's scope is reported as not found (404), never as forbidden, so ids of
other strategies' orders cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Case, Count, Exists, F, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce

from orders.fills import FeeTotal, fee_totals, fill_totals
from orders.models import Fill, Order, OrderEvent, Strategy


class StrategyNotFound(Exception):
    """``strategy_id`` names no strategy."""

    def __init__(self, *, strategy_id: str):
        self.strategy_id = strategy_id
        super().__init__(f"unknown strategy {strategy_id!r}")


class StrategyRequired(Exception):
    """A person submitted without naming ``strategy_id``."""

    def __init__(self):
        super().__init__("required: name the strategy to trade (strategy_id) — only strategy service tokens imply it")


#: The permission a person needs for each trading action, besides the right to trade the strategy
#: (the ``trader`` role group holds both; odum_live/migrations/0001_groups_and_permissions.py).
TRADE_PERMISSIONS = {"submit": "orders.add_order", "cancel": "orders.change_order"}


class StrategyForbidden(Exception):
    """The caller may not trade the named strategy.

    Attributes
    ----------
    strategy_id : str
    code : str
        ``permission_denied`` (a person lacking the action's permission) or ``strategy_forbidden``
        (not this strategy's trader, or a service token bound to another strategy).
    """

    def __init__(self, *, strategy_id: str, detail: str, code: str = "strategy_forbidden"):
        self.strategy_id, self.code = strategy_id, code
        super().__init__(detail)


@dataclass
class OrderAccess:
    """What one authenticated user may see and trade; built once per request.

    Attributes
    ----------
    user : User
    service_strategy : Strategy | None
        The strategy this user is the service account of.
    visible_strategy_ids : frozenset[str] | None
        Strategies whose orders and positions the user sees; None = all.
    """

    user: object
    service_strategy: Strategy | None
    visible_strategy_ids: frozenset[str] | None
    _trade_any: bool | None = field(default=None, repr=False)
    _tradable_ids: frozenset[str] | None = field(default=None, repr=False)

    def can_trade(self, strategy_id: str) -> bool:
        """Return whether the user has the right to trade ``strategy_id`` (half of :meth:`trade_refusal`)."""
        if self.service_strategy is not None:
            return strategy_id == self.service_strategy.id
        if self._trade_any is None:
            self._trade_any = self.user.has_perm("orders.trade_any_strategy")
        if self._trade_any:
            return True
        if self._tradable_ids is None:
            self._tradable_ids = frozenset(self.user.tradable_strategies.values_list("id", flat=True))
        return strategy_id in self._tradable_ids

    def trade_refusal(self, action: str, strategy_id: str | None = None) -> StrategyForbidden | None:
        """Return why the user may not ``action`` orders of ``strategy_id``, or None when they may.

        The one trading policy of the API, the pages and the command line. A strategy service may
        submit and cancel its own strategy's orders only, whatever its permissions. A person needs
        the action's permission (:data:`TRADE_PERMISSIONS`: ``orders.add_order`` to submit,
        ``orders.change_order`` to cancel) *and* the right to trade the strategy
        (:meth:`can_trade`).

        Parameters
        ----------
        action : str
            ``"submit"`` (the what-if included) or ``"cancel"``.
        strategy_id : str | None
            The order's strategy; None asks about the permission alone (whether a page offers the
            order ticket or cancel buttons at all).

        Returns
        -------
        StrategyForbidden | None
            The refusal, naming the reason (its ``code`` says which kind); raise it or show it.
        """
        if self.service_strategy is not None:
            if strategy_id is None or strategy_id == self.service_strategy.id:
                return None
            return StrategyForbidden(strategy_id=strategy_id,
                                     detail=f"this token is bound to strategy {self.service_strategy.id!r}; it "
                                            f"cannot trade strategy {strategy_id!r}")
        if strategy_id is not None and not self.can_trade(strategy_id):
            return StrategyForbidden(strategy_id=strategy_id,
                                     detail=f"you may not {action} orders of strategy {strategy_id!r}: you are not "
                                            "one of its traders and lack the permission orders.trade_any_strategy")
        permission = TRADE_PERMISSIONS[action]
        if not self.user.has_perm(permission):
            where = f" of strategy {strategy_id!r}" if strategy_id else ""
            return StrategyForbidden(strategy_id=strategy_id or "", code="permission_denied",
                                     detail=f"you may not {action} orders{where}: you lack the permission "
                                            f"{permission} (the trader role)")
        return None

    def may(self, action: str, strategy_id: str | None = None) -> bool:
        """Return whether :meth:`trade_refusal` lets the user ``action`` orders of ``strategy_id``."""
        return self.trade_refusal(action, strategy_id) is None


def service_strategy_of(user) -> Strategy | None:
    """Return the strategy ``user`` is the service account of, or None for a person.

    No query when the user came from :class:`orders.api.authentication.BearerTokenAuthentication`
    (it loads the strategy with the token); one query otherwise.
    """
    try:
        return user.service_strategy
    except Strategy.DoesNotExist:
        return None


def order_access_for(*, user) -> OrderAccess:
    """Return the :class:`OrderAccess` of an authenticated ``user`` (one query; two more for a person
    — the permission cache, then their group or their strategy list).

    A strategy service account that no strategy names any more (detached in the admin, its tokens
    still valid) sees and trades nothing: its group's ``orders.view_order`` is for its own
    strategy's orders, not every strategy's.
    """
    service_strategy = service_strategy_of(user)
    if service_strategy is not None:
        return OrderAccess(user=user, service_strategy=service_strategy,
                           visible_strategy_ids=frozenset({service_strategy.id}))
    if user.has_perm("orders.view_order"):
        from orders.management.service_accounts import STRATEGY_SERVICE_GROUP

        if user.groups.filter(name=STRATEGY_SERVICE_GROUP).exists():
            return OrderAccess(user=user, service_strategy=None, visible_strategy_ids=frozenset(), _trade_any=False,
                               _tradable_ids=frozenset())
        return OrderAccess(user=user, service_strategy=None, visible_strategy_ids=None)
    tradable = frozenset(user.tradable_strategies.values_list("id", flat=True))
    return OrderAccess(user=user, service_strategy=None, visible_strategy_ids=tradable, _tradable_ids=tradable)


def strategy_for_submit(*, user, strategy_id: str | None) -> Strategy:
    """Resolve the strategy an order of ``user`` belongs to, checking the right to trade it.

    No query for a strategy service token (its strategy comes with the token); for a person naming
    a strategy two (not a service account; the strategy with their trader flag) plus the
    permission look-up (two more, cached on the user).

    Parameters
    ----------
    user : User
        The authenticated caller.
    strategy_id : str | None
        The ``strategy_id`` of the request; optional for a strategy service token (which implies
        its strategy), required for a person.

    Returns
    -------
    Strategy
        Possibly disabled: the submit service decides what a disabled strategy may do.

    Raises
    ------
    StrategyRequired
        A person gave no ``strategy_id``.
    StrategyNotFound
        ``strategy_id`` names no strategy.
    StrategyForbidden
        A service token naming another strategy, or a person who may not submit for it
        (:meth:`OrderAccess.trade_refusal`: ``orders.add_order`` and the right to trade it).
    """
    own = service_strategy_of(user)
    if own is not None:
        access = OrderAccess(user=user, service_strategy=own, visible_strategy_ids=frozenset({own.id}))
        refusal = access.trade_refusal("submit", strategy_id or own.id)
        if refusal is not None:
            raise refusal
        return own
    if not strategy_id:
        raise StrategyRequired()
    named = (
        Strategy.objects.filter(pk=strategy_id)
        .annotate(is_trader=Exists(Strategy.traders.through.objects.filter(strategy_id=OuterRef("pk"),
                                                                            user_id=user.pk)))
        .first()
    )
    if named is None:
        raise StrategyNotFound(strategy_id=strategy_id)
    # The policy asks about this one strategy, so its trader flag (read with it) stands in for the
    # person's whole list of strategies.
    access = OrderAccess(user=user, service_strategy=None, visible_strategy_ids=frozenset({named.id}),
                         _tradable_ids=frozenset({named.id}) if named.is_trader else frozenset())
    refusal = access.trade_refusal("submit", named.id)
    if refusal is not None:
        raise refusal
    return named


def order_visible_queryset(*, access: OrderAccess) -> QuerySet[Order]:
    """Return the orders ``access`` may see, newest first (``-created_at, -id``)."""
    qs = Order.objects.all()
    if access.visible_strategy_ids is not None:
        qs = qs.filter(strategy_id__in=access.visible_strategy_ids)
    return qs.order_by("-created_at", "-id")


def order_list(*, access: OrderAccess) -> QuerySet[Order]:
    """Return the visible orders with their fills prefetched (for list pages; filter on top)."""
    return order_visible_queryset(access=access).prefetch_related(
        Prefetch("fills", queryset=Fill.objects.order_by("ts_event", "id"))
    )


#: The timeline entries a cancel's reason is read from (:func:`order_cancel_reason`).
CANCEL_EVENT_TYPES = (OrderEvent.Type.CANCEL_REQUESTED, OrderEvent.Type.CANCEL_REJECTED, OrderEvent.Type.CANCELED)


def order_rows(*, access: OrderAccess) -> QuerySet[Order]:
    """Return :func:`order_list` for the Orders page's rows: with, for CANCELED orders, the timeline entries
    their reason is read from (``cancel_events``, :func:`order_reason`) — one query more per page, not per row."""
    cancel_events = OrderEvent.objects.filter(type__in=CANCEL_EVENT_TYPES, order__status=Order.Status.CANCELED)
    return order_list(access=access).prefetch_related(
        Prefetch("events", queryset=cancel_events.order_by("id"), to_attr="cancel_events"))


def order_cancel_reason(*, order: Order) -> str:
    """Return why a CANCELED order was canceled; ``""`` for another status, or when nobody said why.

    Where the services store it: ``rejection_reason`` when the order closed itself (an execution algorithm
    stopped, a family ended short: :mod:`orders.services.venue_events`); else the reason on its last CANCELED
    entry (a cancel before hand-off, a venue's or reconciliation's reason); else the reason of the cancel asked
    for (CANCEL_REQUESTED: a trader's, a kill switch sweep's), unless the venue refused that cancel
    (CANCEL_REJECTED after it: the order ended otherwise); else the CANCELED entry's detail. Entries are taken
    in the order they were recorded. Reads ``order.cancel_events`` (:func:`order_rows`), else ``order.events``
    (prefetched by :func:`order_get`, or one query).
    """
    if order.status != Order.Status.CANCELED:
        return ""
    if order.rejection_reason:
        return order.rejection_reason
    events = getattr(order, "cancel_events", None)
    if events is None:
        events = [e for e in order.events.all() if e.type in CANCEL_EVENT_TYPES]
    asked = canceled = detail = ""
    for event in sorted(events, key=lambda e: e.pk):
        payload = event.payload or {}
        if event.type == OrderEvent.Type.CANCEL_REQUESTED:
            asked = payload.get("reason") or ""
        elif event.type == OrderEvent.Type.CANCEL_REJECTED:
            asked = ""
        else:
            canceled, detail = payload.get("reason") or "", payload.get("detail") or ""
    return canceled or asked or detail


def order_reason(*, order: Order) -> str:
    """Return why the order stands where it is: a DENIED / REJECTED order's ``rejection_reason``, a CANCELED
    order's :func:`order_cancel_reason`; ``""`` otherwise. (``error_message`` is shown apart, as an error.)"""
    return order.rejection_reason or order_cancel_reason(order=order)


def order_get(*, access: OrderAccess, order_id) -> Order | None:
    """Return the order ``order_id`` with fills, child orders and timeline, or None when it does not
    exist *or* is outside the caller's scope (both are a 404 to the caller)."""
    return (
        order_visible_queryset(access=access)
        .prefetch_related(
            Prefetch("fills", queryset=Fill.objects.order_by("ts_event", "id")),
            Prefetch("children", queryset=Order.objects.order_by("created_at", "id")),
            Prefetch("events", queryset=OrderEvent.objects.order_by("ts", "id")),
        )
        .filter(pk=order_id)
        .first()
    )


@dataclass(frozen=True)
class FamilyFills:
    """The fills of an order and of its child orders (algorithm slices), oldest first, with their totals.

    Attributes
    ----------
    fills : list[Fill]
        Ordered by ``ts_event`` then id; ``fill.order_id`` says which order (the order or a slice) filled.
    filled_quantity : Decimal
        Σ quantity, base units (contracts for derivatives).
    avg_fill_price : Decimal | None
        Quantity-weighted average price, quote currency; None without fills.
    fee_totals : tuple[FeeTotal, ...]
        Σ fee per fee currency (:func:`orders.fills.fee_totals`), the currency paid first leading; empty
        without fills. ``Order.fees`` is their plain sum, a number of mixed currencies when there are several.

    The quantity and price follow :func:`orders.fills.fill_totals`, the rule the journal writer stores an
    order's ``filled_quantity`` / ``avg_fill_price`` / ``fees`` by, so they match the order's own figures.
    """

    fills: list[Fill]
    filled_quantity: Decimal
    avg_fill_price: Decimal | None
    fee_totals: tuple[FeeTotal, ...]


def order_family_fills(*, order: Order) -> FamilyFills:
    """Return the fills of ``order`` and of its child orders (algorithm slices) with their totals.

    The one family read of the order's page, ``GET /api/orders/{id}`` and ``manage.py orders show``: an
    execution algorithm's parent is filled by its primary and its slices (``orders.services.venue_events``).
    Uses ``order.children`` and ``order.fills`` as :func:`order_get` prefetches them: then one query for an
    order with child orders, none otherwise.
    """
    children = order.children.all()
    if children:
        fills = list(Fill.objects.filter(order_id__in=[order.pk, *(c.pk for c in children)]).order_by("ts_event", "id"))
    else:
        fills = list(order.fills.all())
    filled, avg, _ = fill_totals((f.quantity, f.price, f.fee) for f in fills)
    return FamilyFills(fills=fills, filled_quantity=filled, avg_fill_price=avg,
                       fee_totals=fee_totals((f.fee, f.fee_currency) for f in fills))


def order_get_detail(*, access: OrderAccess, order_id) -> Order | None:
    """Return :func:`order_get`'s order with ``family_fills`` (:func:`order_family_fills`) set, or None.

    For the order's page, the API's order detail and ``manage.py orders show``, which list the fills of
    the whole family. One query more than :func:`order_get` for an order with child orders, none otherwise.
    """
    order = order_get(access=access, order_id=order_id)
    return None if order is None else order_with_family_fills(order=order)


def order_with_family_fills(*, order: Order) -> Order:
    """Set ``order.family_fills`` (:func:`order_family_fills`) and return the order.

    For the views of an order that show its fees (``orders.formatting.order_status_line``: the ticket's
    result and live status, ``manage.py orders`` submit / cancel): a total per fee currency needs the
    fills. Two queries for an order read without its related rows (its child orders, then the fills).
    """
    order.family_fills = order_family_fills(order=order)
    return order


def order_get_visible(*, access: OrderAccess, order_id) -> Order | None:
    """Return the visible order ``order_id`` without related rows (the cancel service re-reads it
    under a row lock), or None when it does not exist or is outside the caller's scope."""
    return order_visible_queryset(access=access).filter(pk=order_id).first()


def order_column(*, client_order_id: str, column: str) -> Subquery:
    """Return a sub-select of one column of the order ``client_order_id`` (one probe of its unique index).

    For a statement keyed by a venue event, which names the order by client_order_id, that must
    run before the order's row has been read (e.g. in the same pipeline round trip).
    """
    return Subquery(Order.objects.order_by().filter(client_order_id=client_order_id).values(column))


@dataclass(frozen=True, slots=True)
class StuckOrders:
    """Orders waiting in a non-terminal status for longer than a given age (:func:`orders_stuck`).

    Attributes
    ----------
    counts : dict[str, int]
        Status → number of stuck orders in it.
    oldest : dict[str, datetime]
        Status → since when its longest-waiting order has waited (UTC).
    orders : list[tuple[str, str, datetime]]
        (client_order_id, status, waiting since), longest-waiting first, at most ``limit``.
    """

    counts: dict[str, int]
    oldest: dict[str, datetime]
    orders: list[tuple[str, str, datetime]]


def orders_stuck(*, now: datetime, older_than_secs: float, limit: int = 20) -> StuckOrders:
    """Return the orders waiting, for more than ``older_than_secs`` seconds, on a hand-off or a venue's answer.

    - ROUTED since ``created_at``: the outbox sweeper sends it again, and rejects it once
      ``DISPATCH_MAX_AGE_SECS`` old (orders.services.dispatch); older than that, the sweeper is not
      running.
    - SUBMITTED since ``submitted_at`` (its last change when unset), with no venue answer; except an
      execution algorithm's parent, which stays SUBMITTED while its slices work until one fills (its
      slices are judged themselves).
    - PENDING_CANCEL since its last change (``updated_at``: the cancel request, or a fill meanwhile).

    ACCEPTED and PARTIALLY_FILLED orders are working at the venue (a GTC order may rest for days):
    never stuck here.

    Parameters
    ----------
    now : datetime
        Reference time (UTC).
    older_than_secs : float
        Seconds an order may wait before it counts as stuck.
    limit : int
        Most orders listed in ``orders`` (the counts cover them all).

    Returns
    -------
    StuckOrders
        Two queries: the counts and oldest times per status, and the longest-waiting orders.
    """
    S = Order.Status
    cutoff = now - timedelta(seconds=older_than_secs)
    since = Case(When(status=S.ROUTED, then=F("created_at")),
                 When(status=S.SUBMITTED, then=Coalesce("submitted_at", "updated_at")),
                 default=F("updated_at"))
    algorithm_parent = Q(parent__isnull=True) & ~Q(exec_algorithm=Order.ExecAlgorithm.NORMAL)
    waiting = (Order.objects.order_by()
               .filter(Q(status__in=[S.ROUTED, S.PENDING_CANCEL]) | Q(status=S.SUBMITTED) & ~algorithm_parent)
               .annotate(waiting_since=since).filter(waiting_since__lt=cutoff))
    per_status = waiting.values("status").annotate(count=Count("id"), oldest=Min("waiting_since"))
    return StuckOrders(
        counts={row["status"]: row["count"] for row in per_status},
        oldest={row["status"]: row["oldest"] for row in per_status},
        orders=list(waiting.order_by("waiting_since", "id")
                    .values_list("client_order_id", "status", "waiting_since")[:limit]),
    )
