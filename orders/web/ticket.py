"""The order ticket: one order message from people (the Execute page and ``manage.py orders``).

Both take the ticket's flat fields (strings, as a form or a command line gives them), turn them
into the order API's JSON body and validate it with the API's own input serializer
(:class:`orders.api.serializers.OrderCreateInputSerializer`, which calls
:func:`orders.services.request.order_request_build`), resolve the strategy with
:func:`orders.selectors.strategy_for_submit`, and call the same services as the API:
:func:`orders.services.order_submit` and :func:`orders.services.order_risk_check` (what-if). So a
ticket, a CLI command and an API call with the same fields are the same order (same fingerprint,
same idempotency on ``(strategy, operation_id)``).

Errors come back as :class:`TicketError` with ``fields`` keyed by the ticket's field names (the
API's names: ``strategy_id``, ``instrument_key``, ``quantity`` …; algorithm parameters under
``exec_algorithm_params`` → parameter name), so each page / command shows them next to the field.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from orders.algorithms import ALGORITHM_PARAMS  # the one table of each algorithm's parameters
from orders.api.serializers import OrderCreateInputSerializer, RiskCheckInputSerializer
from orders.models import Strategy
from orders.selectors import StrategyForbidden, StrategyNotFound, StrategyRequired, strategy_for_submit
from orders.services import (
    IdempotencyConflict,
    OrderRequestInvalid,
    RiskCheckResult,
    StrategyDisabled,
    SubmitResult,
    order_risk_check,
    order_submit,
)

#: Ticket fields, in form / command-line order (the order API's field names).
TICKET_FIELDS = ("strategy_id", "instrument_key", "side", "order_type", "quantity", "price", "time_in_force",
                 "expire_time", "exec_algorithm", "operation_id")
#: Algorithm parameters the ticket offers, in display order, with how a text value is read.
PARAM_KINDS = {"horizon_secs": "int", "interval_secs": "int", "max_participation": "decimal",
               "volume_profile": "list", "display_qty": "decimal"}


class TicketError(Exception):
    """The ticket cannot be submitted.

    Attributes
    ----------
    fields : dict[str, list[str] | dict[str, list[str]]]
        Reasons by ticket field (``exec_algorithm_params``: by parameter); ``"ticket"`` for a
        reason about the whole ticket (idempotency conflict, disabled strategy).
    status : int
        The HTTP status a page answers with: 400 invalid, 403 forbidden strategy or missing
        permission, 409 conflict, 422 disabled strategy.
    code : str
        ``invalid``, ``strategy_forbidden``, ``permission_denied``, ``idempotency_conflict`` or
        ``strategy_disabled``.
    """

    def __init__(self, fields: dict, *, status: int = 400, code: str = "invalid"):
        self.fields, self.status, self.code = fields, status, code
        super().__init__("; ".join(f"{name}: {_text(reasons)}" for name, reasons in fields.items()))


def _text(reasons) -> str:
    if isinstance(reasons, dict):
        return "; ".join(f"{name}: {_text(r)}" for name, r in reasons.items())
    if isinstance(reasons, (list, tuple)):
        return " ".join(str(r) for r in reasons)
    return str(reasons)


def new_operation_id(prefix: str = "web") -> str:
    """Return a fresh operation id for a new ticket (``web-<12 hex>``; ``cli-`` from the command)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Ticket:
    """The ticket's raw values: strings as typed (empty = absent), params by name."""

    values: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data) -> Ticket:
        """Read a ticket from a form (``QueryDict``) or dict: fields by name, params as ``param_<name>``.

        Fields are kept as typed: the API's input serializer, which validates the ticket, trims what
        the API trims (free text such as ``strategy_id`` and ``instrument_key``) and refuses edge
        whitespace where the API does, with its own reason (a choice: " BUY" is no side;
        ``expire_time``; ``quantity`` and ``price``, whose decimal strings the OpenAPI schema's pattern
        refuses with it; ``operation_id``, where " op-1" would be another idempotency key). Trimming
        here had the ticket take " BUY" where the API refuses it. A decimal algorithm parameter
        (``display_qty``, ``max_participation``) is likewise sent as typed, a decimal string the API
        reads as it reads ``quantity`` (:func:`odum_live.fields.decimal_input`). The ticket turns the
        others into the JSON values the API takes, so they are trimmed: integer seconds, and
        ``volume_profile``'s list of weights. A parameter left blank is absent.
        """
        values = {name: str(data.get(name, "") or "") for name in TICKET_FIELDS}
        params = {name: str(data.get(f"param_{name}", "") or "") for name in PARAM_KINDS}
        return cls(values=values, params={name: value if PARAM_KINDS[name] == "decimal" else value.strip()
                                          for name, value in params.items() if value.strip()})

    def algorithm_params(self) -> dict[str, str]:
        """The params that belong to the chosen algorithm (others are left behind by a form)."""
        allowed = ALGORITHM_PARAMS.get(self.values.get("exec_algorithm") or "NORMAL", frozenset())
        return {name: value for name, value in self.params.items() if name in allowed}

    def body(self) -> dict:
        """Return the order API's JSON body for this ticket (strings; seconds as integers)."""
        body = {name: value for name, value in self.values.items() if value != ""}
        params = {}
        for name, value in self.algorithm_params().items():
            kind = PARAM_KINDS[name]
            if kind == "int" and value.isascii() and value.isdigit():
                params[name] = int(value)
            elif kind == "list":
                params[name] = [item for item in value.replace(",", " ").split() if item]
            else:
                params[name] = value  # the validator names a bad value (e.g. "1.5" seconds)
        if params:
            body["exec_algorithm_params"] = params
        return body


def _validated(serializer_class, *, user, ticket: Ticket):
    serializer = serializer_class(data=ticket.body())
    if not serializer.is_valid():
        raise TicketError({name: _plain(reasons) for name, reasons in serializer.errors.items()})
    try:
        strategy = strategy_for_submit(user=user, strategy_id=serializer.validated_data["strategy_id"])
    except (StrategyRequired, StrategyNotFound) as exc:
        raise TicketError({"strategy_id": [str(exc)]}) from None
    except StrategyForbidden as exc:
        raise ticket_forbidden(exc) from None
    return strategy, serializer.validated_data["request"]


def ticket_forbidden(exc: StrategyForbidden) -> TicketError:
    """Return the 403 :class:`TicketError` of a refusal: under ``strategy_id`` when the strategy is
    not the user's to trade, about the whole ticket when the user may not submit at all."""
    field_name = "strategy_id" if exc.code == "strategy_forbidden" else "ticket"
    return TicketError({field_name: [str(exc)]}, status=403, code=exc.code)


def _plain(reasons):
    # DRF ErrorDetail → str, keeping the nesting of exec_algorithm_params.
    if isinstance(reasons, dict):
        return {name: _plain(r) for name, r in reasons.items()}
    if isinstance(reasons, (list, tuple)):
        return [str(r) for r in reasons]
    return [str(reasons)]


def ticket_submit(*, user, ticket: Ticket) -> SubmitResult:
    """Validate ``ticket`` and submit it through :func:`orders.services.order_submit`.

    Parameters
    ----------
    user : User
        The person (or, from the command line, the user named with ``--user``); recorded as the
        order's ``created_by`` and on its RECEIVED event.
    ticket : Ticket
        Quantity in base units, price in quote currency, as decimal strings.

    Returns
    -------
    SubmitResult
        ``created`` False when the operation id was submitted before with the same fields
        (nothing re-sent).

    Raises
    ------
    TicketError
        Invalid fields (400), a strategy the user may not trade or a user without
        ``orders.add_order`` (403, :meth:`orders.selectors.OrderAccess.trade_refusal`), the
        operation id used for a different order (409), a disabled strategy (422).
    """
    strategy, request = _validated(OrderCreateInputSerializer, user=user, ticket=ticket)
    try:
        return order_submit(strategy=strategy, actor=user.get_username(), data=request)
    except IdempotencyConflict as exc:
        raise TicketError({"operation_id": [str(exc)]}, status=409, code="idempotency_conflict") from None
    except StrategyDisabled as exc:
        raise TicketError({"strategy_id": [str(exc)]}, status=422, code="strategy_disabled") from None
    except OrderRequestInvalid as exc:  # a passed expire_time that replays no stored order
        raise TicketError(_plain(exc.errors)) from None


def ticket_what_if(*, user, ticket: Ticket) -> RiskCheckResult:
    """Route ``ticket`` and run every pre-trade check without recording anything.

    The same decision :func:`ticket_submit` would take now (:func:`orders.services.order_risk_check`);
    the operation id is optional.

    Raises
    ------
    TicketError
        As :func:`ticket_submit`, except the idempotency conflict (nothing is looked up).
    """
    strategy, request = _validated(RiskCheckInputSerializer, user=user, ticket=ticket)
    if not strategy.enabled:
        raise TicketError({"strategy_id": [f"strategy {strategy.id!r} is disabled: new orders are refused"]},
                          status=422, code="strategy_disabled")
    return order_risk_check(strategy=strategy, data=request)


def strategies_tradable_by(user) -> list[Strategy]:
    """Return the enabled strategies ``user`` may trade (all with ``orders.trade_any_strategy``), by id."""
    qs = Strategy.objects.filter(enabled=True)
    if not user.has_perm("orders.trade_any_strategy"):
        qs = qs.filter(traders=user)
    return list(qs.order_by("id"))
