"""``manage.py orders submit|cancel|list|show``: the order ticket and the order pages on the command line.

Same services as the API and the Execute page (:mod:`orders.web.ticket`, :func:`orders.services.order_cancel`,
:mod:`orders.selectors`), same output as the Execute page's CLI view (:mod:`orders.formatting`)::

    manage.py orders submit --user trader --strategy demo --instrument BINANCE-SPOT:SPOT_PAIR:BTC-USDT \\
        --side BUY --type MARKET --qty 0.05
    manage.py orders submit --user trader --strategy demo --instrument BINANCE-SPOT:SPOT_PAIR:BTC-USDT \\
        --side SELL --type LIMIT --qty 1 --price 45000 --algorithm ICEBERG --param display_qty=0.1 --operation-id op-7
    manage.py orders list --status ROUTED --status ACCEPTED --venue BINANCE-SPOT --limit 20
    manage.py orders show <order id | operation id>
    manage.py orders cancel <order id> --user trader --reason "no longer needed"

``--user`` names the person the action is attributed to (and whose rights apply: the strategies
they may trade); ``submit`` and ``cancel`` need it. ``list`` and ``show`` without it see every
order (an operator on the server). Errors name the field and exit with status 1.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from orders.api.filters import OrderFilter
from orders.formatting import order_block, order_detail_block, order_table
from orders.selectors import (
    OrderAccess,
    order_access_for,
    order_get_detail,
    order_get_visible,
    order_list,
    order_with_family_fills,
)
from orders.services import OrderNotCancelable, order_cancel
from orders.web.ticket import PARAM_KINDS, Ticket, TicketError, new_operation_id, ticket_submit


class Command(BaseCommand):
    help = "Submit, cancel, list and show orders (the order ticket on the command line)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="submit|cancel|list|show")

        submit = sub.add_parser("submit", help="Submit an order (same fields as POST /api/orders).")
        submit.add_argument("--user", required=True, help="Person the order is attributed to (their rights apply).")
        submit.add_argument("--strategy", dest="strategy_id", required=True, help="Strategy id.")
        submit.add_argument("--instrument", dest="instrument_key", required=True,
                            help="Canonical instrument key, e.g. BINANCE-SPOT:SPOT_PAIR:BTC-USDT (ANY:… lets the router choose).")
        submit.add_argument("--side", required=True, help="BUY or SELL.")
        submit.add_argument("--type", dest="order_type", default="MARKET", help="MARKET (default) or LIMIT.")
        submit.add_argument("--qty", dest="quantity", required=True, help="Quantity in base units, e.g. 0.05.")
        submit.add_argument("--price", default="", help="Limit price in quote currency (LIMIT only).")
        submit.add_argument("--tif", dest="time_in_force", default="GTC", help="GTC (default), IOC, FOK or GTD.")
        submit.add_argument("--expire-time", dest="expire_time", default="", help="GTD expiry, ISO-8601 UTC.")
        submit.add_argument("--algorithm", dest="exec_algorithm", default="NORMAL", help="NORMAL, TWAP, VWAP or ICEBERG.")
        submit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help=f"Algorithm parameter, repeatable: {', '.join(PARAM_KINDS)} "
                                 "(volume_profile as comma-separated weights).")
        submit.add_argument("--operation-id", dest="operation_id", default="",
                            help="Idempotency key (default: a new cli-… id); the same id again replays the order.")

        cancel = sub.add_parser("cancel", help="Cancel an order.")
        cancel.add_argument("order_id", help="Order id (UUID).")
        cancel.add_argument("--user", required=True, help="Person the cancel is attributed to (their rights apply).")
        cancel.add_argument("--reason", default="", help="Recorded on the order's timeline.")

        listing = sub.add_parser("list", help="List orders, newest first (the Orders page's columns).")
        listing.add_argument("--user", default="", help="See only what this person sees (default: every order).")
        listing.add_argument("--status", action="append", default=[], help="Status, repeatable.")
        listing.add_argument("--venue", default="", help="Venue code.")
        listing.add_argument("--instrument", default="", help="Requested or routed instrument key.")
        listing.add_argument("--strategy", default="", help="Strategy id.")
        listing.add_argument("--since", dest="created_after", default="", help="Created at or after (ISO-8601).")
        listing.add_argument("--until", dest="created_before", default="", help="Created before (ISO-8601).")
        listing.add_argument("--search", dest="q", default="", help="Order id, operation id or client order id.")
        listing.add_argument("--limit", type=int, default=50, help="Most orders printed (default 50).")

        show = sub.add_parser("show", help="Show one order: timeline, fills (an algorithm parent's: its family's), "
                                           "child orders, risk checks, routing.")
        show.add_argument("order_id", help="Order id (UUID) or operation id.")
        show.add_argument("--user", default="", help="See only what this person sees (default: every order).")

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    # -- actions -----------------------------------------------------------------------------------
    def _submit(self, *, user, param, **options):
        person = _user(user)
        params = {}
        for item in param:
            name, sep, value = item.partition("=")
            if not sep or name not in PARAM_KINDS:
                raise CommandError(f"exec_algorithm_params: --param {item!r}: expected NAME=VALUE with NAME one of "
                                   f"{', '.join(PARAM_KINDS)}")
            params[name] = value
        values = {name: str(options.get(name) or "") for name in
                  ("strategy_id", "instrument_key", "side", "order_type", "quantity", "price", "time_in_force",
                   "expire_time", "exec_algorithm", "operation_id")}
        values["operation_id"] = values["operation_id"] or new_operation_id("cli")
        try:
            result = ticket_submit(user=person, ticket=Ticket(values=values, params=params))
        except TicketError as exc:
            raise CommandError(f"order refused ({exc.code}): {exc}") from None
        self.stdout.write(order_block(order_with_family_fills(order=result.order), created=result.created))

    def _cancel(self, *, order_id, user, reason, **options):
        person = _user(user)
        access = order_access_for(user=person)
        order = order_get_visible(access=access, order_id=_uuid(order_id))
        if order is None:
            raise CommandError(f"order_id: no order {order_id} visible to {person.get_username()!r}")
        refusal = access.trade_refusal("cancel", order.strategy_id)  # the API's and the pages' policy
        if refusal is not None:
            raise CommandError(f"order_id: {person.get_username()!r}: {refusal}")
        try:
            order = order_cancel(order=order, actor=person.get_username(), reason=reason)
        except OrderNotCancelable as exc:
            raise CommandError(f"order_id: {exc}") from None
        self.stdout.write(order_block(order_with_family_fills(order=order)))

    def _list(self, *, user, limit, **options):
        access = _access(user)
        query = QueryDict(mutable=True)
        for name in ("venue", "instrument", "strategy", "created_after", "created_before", "q"):
            if options.get(name):
                query[name] = options[name]
        query.setlist("status", options.get("status") or [])
        filterset = OrderFilter(query, queryset=order_list(access=access))
        if not filterset.is_valid():
            raise CommandError("; ".join(f"{name}: {' '.join(map(str, messages))}"
                                         for name, messages in filterset.errors.items()))
        self.stdout.write(order_table(filterset.qs[:max(limit, 0)]))

    def _show(self, *, order_id, user, **options):
        access = _access(user)
        order = None
        try:
            order = order_get_detail(access=access, order_id=_uuid(order_id))
        except CommandError:
            match = order_list(access=access).filter(operation_id=order_id).first()
            order = order_get_detail(access=access, order_id=match.pk) if match else None
        if order is None:
            raise CommandError(f"order_id: no order {order_id}")
        self.stdout.write(order_detail_block(order))


def _user(username: str):
    model = get_user_model()
    try:
        return model.objects.get(**{model.USERNAME_FIELD: username})
    except model.DoesNotExist:
        raise CommandError(f"user: no user {username!r}") from None


def _access(username: str) -> OrderAccess:
    if username:
        return order_access_for(user=_user(username))
    return OrderAccess(user=None, service_strategy=None, visible_strategy_ids=None)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError(f"order_id: {text!r} is not an order id (UUID)") from None

