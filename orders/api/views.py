"""The order API: thin views — parse, call a selector or service, render (CONVENTIONS.md).

One view class per URL; each HTTP method is one operation with its own input and output
serializers. Errors are JSON ``{"error", "detail", ["fields"]}`` (:mod:`orders.api.errors`).
"""

from __future__ import annotations

import uuid

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from odum_live.fields import NulCharacterError, refuse_nul
from odum_live.health import health_report
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from orders.api.errors import Conflict, Forbidden, Unprocessable
from orders.api.filters import OrderApiFilter, OrderCursorPagination
from orders.api.permissions import IsApiUser, request_access
from orders.api.serializers import (
    ErrorOutputSerializer,
    HealthOutputSerializer,
    InstrumentPositionOutputSerializer,
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    OrderDetailOutputSerializer,
    OrderOutputSerializer,
    PositionListOutputSerializer,
    RiskCheckInputSerializer,
    RiskCheckOutputSerializer,
)
from orders.models import Order
from orders.selectors import (
    StrategyForbidden,
    StrategyNotFound,
    StrategyRequired,
    order_get_detail,
    order_get_visible,
    order_list,
    strategy_for_submit,
)
from orders.services import (
    IdempotencyConflict,
    OrderNotCancelable,
    OrderRequestInvalid,
    StrategyDisabled,
    order_cancel,
    order_risk_check,
    order_submit,
)
from positions.selectors import position_aggregates

# -- documentation helpers -----------------------------------------------------------------------
_ERR = ErrorOutputSerializer
_E400 = OpenApiResponse(_ERR, description="Invalid input: `fields` names each offending field with the reason.",
                        examples=[OpenApiExample("Invalid fields", status_codes=["400"], value={
                            "error": "invalid", "detail": "Invalid input: instrument_key, price, status.",
                            "fields": {"instrument_key": ["venue 'binance': must be upper-case letters/digits "
                                                          "joined by '-' or '_'"],
                                       "price": ["is required for a LIMIT order (quote currency)"],
                                       "status": ["is set by the server and cannot be supplied by a client"]}})])
_E401 = OpenApiResponse(_ERR, description="No or invalid credentials (`Authorization: Bearer <token>`): "
                        "`not_authenticated` without an `Authorization` header, else `authentication_failed` with "
                        "the reason (another scheme such as `Token` or `Basic`, or a bare token, names the expected "
                        "`Bearer`).")
_E403 = OpenApiResponse(_ERR, description="The caller may not trade the strategy: `strategy_forbidden` (a person "
                        "not among its traders and without `orders.trade_any_strategy`, or a service token of another "
                        "strategy) or `permission_denied` (a person without `orders.add_order` to submit, "
                        "`orders.change_order` to cancel).",
                        examples=[OpenApiExample("Strategy forbidden", status_codes=["403"], value={
                            "error": "strategy_forbidden", "strategy_id": "momentum-1",
                            "detail": "you may not submit orders of strategy 'momentum-1': you are not one of its "
                                      "traders and lack the permission orders.trade_any_strategy"}),
                                  OpenApiExample("Permission missing", status_codes=["403"], value={
                                      "error": "permission_denied", "strategy_id": "momentum-1",
                                      "detail": "you may not submit orders of strategy 'momentum-1': you lack the "
                                                "permission orders.add_order (the trader role)"})])
_E404 = OpenApiResponse(_ERR, description="No such order visible to the caller (other strategies' orders are 404).")
_E422 = OpenApiResponse(_ERR, description="The strategy is disabled.",
                        examples=[OpenApiExample("Strategy disabled", status_codes=["422"], value={
                            "error": "strategy_disabled", "strategy_id": "momentum-1",
                            "detail": "strategy 'momentum-1' is disabled: new orders are refused"})])
_E429 = OpenApiResponse(_ERR, description="Rate limit of the token exceeded; retry after `retry_after_secs`.")
_E503 = OpenApiResponse(_ERR, description="The rate limiter's store (Redis) does not answer: nothing was done; "
                                          "retry later (`throttle_unavailable`).")
_E415 = OpenApiResponse(_ERR, description="The body is not JSON (`Content-Type: application/json`), or its "
                        "`Content-Type` declares a charset other than `utf-8`: JSON is UTF-8 (RFC 8259 §8.1). A body "
                        "that is not valid UTF-8 is a 400 `parse_error`.")
_E413 = OpenApiResponse(_ERR, description="The body exceeds `DATA_UPLOAD_MAX_MEMORY_SIZE` bytes (2.5 MiB by default): "
                                          "`request_too_large`, nothing parsed.")

_ORDER_EXAMPLE = {
    "order_id": "0192f0c4-7a1e-7c3b-9d2a-5b6c7d8e9f00", "client_order_id": "OL00001vEgL3UqJ7hTzXkQW2aB",
    "operation_id": "op-20250101-0001", "strategy_id": "momentum-1", "status": "ROUTED", "rejection_reason": "",
    "error_message": "", "operation": "trade", "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT",
    "routed_instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "venue": "BINANCE-SPOT", "venue_type": "NAUTILUS",
    "venue_order_id": "", "side": "BUY", "order_type": "LIMIT", "quantity": "0.01", "price": "40000",
    "time_in_force": "GTC", "expire_time": None, "exec_algorithm": "NORMAL", "exec_algorithm_params": {},
    "filled_quantity": "0", "leaves_quantity": "0.01", "avg_fill_price": None, "fees": "0", "fills": [],
    "risk_result": {"passed": True, "checks": ["…"]}, "routing_decision": {"routed": True, "venue": "BINANCE-SPOT"},
    "parent_order_id": None, "created_by": "svc-momentum-1", "created_at": "2025-01-01T12:00:00.123456Z",
    "updated_at": "2025-01-01T12:00:00.123456Z", "dispatched_at": None, "submitted_at": None, "accepted_at": None,
    "closed_at": None,
}
_DENIED_EXAMPLE = {**_ORDER_EXAMPLE, "status": "DENIED", "leaves_quantity": "0",
                   "rejection_reason": "max_order_notional: notional 400000 USDT exceeds limit 100000 "
                                       "(STRATEGY:momentum-1)",
                   "closed_at": "2025-01-01T12:00:00.123456Z"}
_REQUEST_EXAMPLES = [
    OpenApiExample("LIMIT buy", request_only=True, value={
        "operation_id": "op-20250101-0001", "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "side": "BUY",
        "quantity": "0.01", "price": "40000", "order_type": "LIMIT", "time_in_force": "GTC"}),
    OpenApiExample("TWAP on any venue", request_only=True, value={
        "operation_id": "op-20250101-0002", "instrument_key": "ANY:PERPETUAL:BTC-USDT@LIN", "side": "SELL",
        "quantity": "2", "order_type": "MARKET", "exec_algorithm": "TWAP",
        "exec_algorithm_params": {"horizon_secs": 600, "interval_secs": 60}}),
    OpenApiExample("GTD iceberg (person naming the strategy)", request_only=True, value={
        "strategy_id": "momentum-1", "operation_id": "op-20250101-0003",
        "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "side": "BUY", "quantity": "1", "price": "39000",
        "order_type": "LIMIT", "time_in_force": "GTD", "expire_time": "2030-01-01T00:00:00Z",
        "exec_algorithm": "ICEBERG", "exec_algorithm_params": {"display_qty": "0.1"}}),
]


_ORDER_ID_PARAM = OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                   description="Order id (UUID); a malformed one is a 400 naming order_id.")


def _order_id(value: str) -> uuid.UUID:
    # The route takes any path segment (orders.api.urls.OrderIdConverter): parse it here for a 400.
    try:
        return uuid.UUID(value)
    except ValueError:
        raise serializers.ValidationError({"order_id": [f"must be an order id (a UUID), got {value!r}"]}) from None


def _strategy(request, strategy_id):
    try:
        return strategy_for_submit(user=request.user, strategy_id=strategy_id)
    except StrategyRequired as exc:
        raise serializers.ValidationError({"strategy_id": [str(exc)]}) from None
    except StrategyNotFound as exc:
        raise serializers.ValidationError({"strategy_id": [str(exc)]}) from None
    except StrategyForbidden as exc:
        raise _forbidden(exc) from None


def _forbidden(exc: StrategyForbidden) -> Forbidden:
    return Forbidden(str(exc), code=exc.code, strategy_id=exc.strategy_id)


# -- orders ----------------------------------------------------------------------------------------
class OrderCollectionApi(GenericAPIView):
    """``GET /api/orders`` (list) and ``POST /api/orders`` (submit)."""

    permission_classes = [IsApiUser]
    filterset_class = OrderApiFilter
    pagination_class = OrderCursorPagination
    serializer_class = OrderOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user, no database
            return Order.objects.none()
        return order_list(access=request_access(self.request))

    @extend_schema(
        operation_id="orders_list",
        summary="List orders",
        description="Orders visible to the caller, newest first (`-created_at, -id`), cursor-paginated: a snapshot "
                    "walk, not a feed (an order committed just after a page was read may sort before its cursor; "
                    "follow new orders on /ws/orders/ or poll `created_after` with an overlap). A strategy "
                    "service token sees its own strategy's orders only; people with `orders.view_order` see all; "
                    "other people see the strategies they trade. A query parameter that is neither a filter nor "
                    "`cursor` / `page_size` is a 400 naming it.",
        responses={200: OrderOutputSerializer(many=True), 400: _E400, 401: _E401, 429: _E429, 503: _E503},
    )
    def get(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        serializer = OrderOutputSerializer()
        return self.get_paginated_response([serializer.to_representation(o) for o in page])

    @extend_schema(
        operation_id="orders_create",
        summary="Submit an order",
        description="Validate, check pre-trade risk, route and record the order in one transaction, then hand it "
                    "to the trading worker after commit. **Idempotent on `operation_id`** per strategy: `201` for "
                    "a new order (also a DENIED one — it is recorded with its `rejection_reason`), `200` with the "
                    "stored order when the same `operation_id` comes again with the same body (nothing re-sent), "
                    "`409` when it comes with a different body. Decimals are strings or JSON integers; JSON floats "
                    "are refused. Unknown and server-owned fields are refused.",
        request=OrderCreateInputSerializer,
        examples=[*_REQUEST_EXAMPLES,
                  OpenApiExample("Routed", response_only=True, status_codes=["201"], value=_ORDER_EXAMPLE),
                  OpenApiExample("Denied by pre-trade risk", response_only=True, status_codes=["201"],
                                 value=_DENIED_EXAMPLE)],
        responses={
            201: OpenApiResponse(OrderOutputSerializer, description="New order recorded (ROUTED or DENIED)."),
            200: OpenApiResponse(OrderOutputSerializer, description="Same operation_id and body as a stored order: "
                                 "the stored order, in its current state; nothing re-sent."),
            400: _E400, 401: _E401, 403: _E403,
            409: OpenApiResponse(_ERR, description="operation_id already used with a different body: `fields` "
                                 "names each field that differs from the stored order, with the stored value.",
                                 examples=[OpenApiExample("Idempotency conflict", status_codes=["409"], value={
                                     "error": "idempotency_conflict", "operation_id": "op-20250101-0001",
                                     "order_id": "0192f0c4-7a1e-7c3b-9d2a-5b6c7d8e9f00",
                                     "detail": "operation_id 'op-20250101-0001' was already used for order "
                                               "0192f0c4-7a1e-7c3b-9d2a-5b6c7d8e9f00 with a different request body "
                                               "(differing: quantity); use a new operation_id for a new order",
                                     "fields": {"quantity": ["differs from the stored order's: 0.01"]}})]),
            413: _E413, 415: _E415, 422: _E422, 429: _E429, 503: _E503,
        },
    )
    def post(self, request):
        serializer = OrderCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        strategy = _strategy(request, serializer.validated_data["strategy_id"])
        try:
            result = order_submit(strategy=strategy, actor=request.user.get_username(),
                                  data=serializer.validated_data["request"])
        except IdempotencyConflict as exc:
            extra = {"fields": exc.differences} if exc.differences else {}
            raise Conflict(str(exc), code="idempotency_conflict", operation_id=exc.operation_id,
                           order_id=str(exc.order_id), **extra) from None
        except StrategyDisabled as exc:
            raise Unprocessable(str(exc), code="strategy_disabled", strategy_id=exc.strategy_id) from None
        except OrderRequestInvalid as exc:  # a passed expire_time that replays no stored order
            raise serializers.ValidationError(exc.errors) from None
        body = OrderOutputSerializer(context={"new_order": result.created}).to_representation(result.order)
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
                        headers={"Location": f"/api/orders/{result.order.id}"})


class OrderDetailApi(APIView):
    """``GET /api/orders/{order_id}``."""

    permission_classes = [IsApiUser]

    @extend_schema(
        operation_id="orders_retrieve",
        summary="Fetch one order",
        description="The order with its fills, child orders (algorithm slices) and timeline events. A TWAP / "
                    "VWAP / ICEBERG parent's `fills` are its family's (its own and its slices'), each naming the "
                    "`order_id` it was booked on, as its `filled_quantity`, `avg_fill_price` and `fees` count "
                    "them. An order outside the caller's scope is a 404.",
        parameters=[_ORDER_ID_PARAM],
        responses={200: OrderDetailOutputSerializer, 400: _E400, 401: _E401, 404: _E404, 429: _E429, 503: _E503},
    )
    def get(self, request, order_id):
        order = order_get_detail(access=request_access(request), order_id=_order_id(order_id))
        if order is None:
            raise Http404(f"no order {order_id}")
        return Response(OrderDetailOutputSerializer().to_representation(order))


class OrderCancelApi(APIView):
    """``POST /api/orders/{order_id}/cancel``."""

    permission_classes = [IsApiUser]

    @extend_schema(
        operation_id="orders_cancel",
        summary="Cancel an order",
        description="ROUTED (not yet handed to a venue): canceled at once → `200` with status CANCELED. "
                    "SUBMITTED / ACCEPTED / PARTIALLY_FILLED: → PENDING_CANCEL and the cancel goes to the venue → "
                    "`202`; the venue's answer moves the order on. Terminal or already PENDING_CANCEL → `409` with "
                    "the current `status`. An order outside the caller's scope is a 404; a visible order the caller "
                    "may not cancel (a strategy they do not trade, or a person without `orders.change_order`) "
                    "is a 403.",
        request=OrderCancelInputSerializer,
        parameters=[_ORDER_ID_PARAM],
        responses={
            200: OpenApiResponse(OrderOutputSerializer, description="Canceled at once (was ROUTED)."),
            202: OpenApiResponse(OrderOutputSerializer, description="Cancel requested at the venue (PENDING_CANCEL)."),
            400: _E400, 401: _E401, 403: _E403, 404: _E404,
            409: OpenApiResponse(_ERR, description="The order cannot be canceled in its current status.",
                                 examples=[OpenApiExample("Not cancelable", status_codes=["409"], value={
                                     "error": "order_not_cancelable", "status": "FILLED",
                                     "order_id": "0192f0c4-7a1e-7c3b-9d2a-5b6c7d8e9f00",
                                     "detail": "order 0192f0c4-7a1e-7c3b-9d2a-5b6c7d8e9f00 cannot be canceled in "
                                               "status FILLED: the order is terminal"})]),
            413: _E413, 415: _E415, 429: _E429, 503: _E503,
        },
    )
    def post(self, request, order_id):
        order_id = _order_id(order_id)
        serializer = OrderCancelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        access = request_access(request)
        order = order_get_visible(access=access, order_id=order_id)
        if order is None:
            raise Http404(f"no order {order_id}")
        refusal = access.trade_refusal("cancel", order.strategy_id)
        if refusal is not None:
            raise _forbidden(refusal)
        try:
            order = order_cancel(order=order, actor=request.user.get_username(),
                                 reason=serializer.validated_data.get("reason", ""))
        except OrderNotCancelable as exc:
            raise Conflict(str(exc), code="order_not_cancelable", status=exc.status,
                           order_id=str(exc.order_id)) from None
        code = status.HTTP_200_OK if order.status == "CANCELED" else status.HTTP_202_ACCEPTED
        return Response(OrderOutputSerializer().to_representation(order), status=code)


# -- positions -------------------------------------------------------------------------------------
_STRATEGY_PARAM = OpenApiParameter("strategy", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                                   description="Only this strategy's positions (within the caller's scope). The "
                                               "only parameter: any other is a 400 naming it.")


def _strategy_param(request) -> str | None:
    # The positions' one parameter; any other is a 400 (a misnamed filter would be silently ignored).
    unknown = sorted(set(request.query_params) - {"strategy", "format"})
    if unknown:
        raise serializers.ValidationError({name: ["is not a parameter of the positions (parameters: strategy)"]
                                           for name in unknown})
    value = request.query_params.get("strategy") or None
    if value is None:
        return None
    try:
        return refuse_nul(value, field="strategy")  # PostgreSQL refuses a NUL in a query: a 400, not a 500
    except NulCharacterError as exc:
        raise serializers.ValidationError({exc.field: [exc.reason]}) from None


class PositionListApi(APIView):
    """``GET /api/positions``."""

    permission_classes = [IsApiUser]

    @extend_schema(
        operation_id="positions_list",
        summary="List positions",
        description="Visible positions aggregated by canonical instrument across venues (listings sharing an "
                    "equivalence key), each with its per-venue breakdown. Quantities are signed base units, "
                    "prices quote currency, PnL and fees in each entry's pnl_currency (the settlement coin "
                    "for inverse contracts), all decimal strings.",
        parameters=[_STRATEGY_PARAM],
        responses={200: PositionListOutputSerializer, 400: _E400, 401: _E401, 429: _E429, 503: _E503},
    )
    def get(self, request):
        access = request_access(request)
        aggregates = position_aggregates(strategy_ids=access.visible_strategy_ids,
                                         strategy_id=_strategy_param(request))
        serializer = InstrumentPositionOutputSerializer()
        return Response({"count": len(aggregates), "results": [serializer.to_representation(a) for a in aggregates]})


class PositionDetailApi(APIView):
    """``GET /api/positions/{instrument_key}``."""

    permission_classes = [IsApiUser]

    @extend_schema(
        operation_id="positions_retrieve",
        summary="Position in one instrument",
        description="An `ANY:` key aggregates the instrument across venues; a venue key "
                    "(`BINANCE-SPOT:SPOT_PAIR:BTC-USDT`) gives that listing only. `:` and `@` may be sent as is "
                    "or percent-encoded. 400 for a malformed key, 404 when there is no visible position.",
        parameters=[
            OpenApiParameter("instrument_key", OpenApiTypes.STR, OpenApiParameter.PATH,
                             description="Canonical instrument key, e.g. ANY:PERPETUAL:BTC-USDT@LIN.",
                             examples=[OpenApiExample("any venue", value="ANY:PERPETUAL:BTC-USDT@LIN"),
                                       OpenApiExample("one listing", value="BINANCE-SPOT:SPOT_PAIR:BTC-USDT")]),
            _STRATEGY_PARAM,
        ],
        responses={200: InstrumentPositionOutputSerializer, 400: _E400, 401: _E401, 404: _E404, 429: _E429, 503: _E503},
    )
    def get(self, request, instrument_key: str):
        try:
            key = parse_instrument_key(instrument_key)
        except InstrumentKeyError as exc:
            raise serializers.ValidationError({"instrument_key": [str(exc)]}) from None
        access = request_access(request)
        filters = {"equivalence_key": key.equivalence_key} if key.is_any_venue else {"instrument_key": str(key)}
        aggregates = position_aggregates(strategy_ids=access.visible_strategy_ids,
                                         strategy_id=_strategy_param(request), **filters)
        if not aggregates:
            raise Http404(f"no position in {instrument_key}")
        return Response(InstrumentPositionOutputSerializer().to_representation(aggregates[0]))


# -- risk ------------------------------------------------------------------------------------------
class RiskCheckApi(APIView):
    """``POST /api/risk/check``."""

    permission_classes = [IsApiUser]

    @extend_schema(
        operation_id="risk_check",
        summary="What-if pre-trade risk check",
        description="Route the order and run every pre-trade check without recording anything (no order, no "
                    "event, no velocity usage, no lock). Same body as `POST /api/orders`; `operation_id` is "
                    "optional. Concurrent orders may change velocity and exposure before a real submit.",
        request=RiskCheckInputSerializer,
        examples=_REQUEST_EXAMPLES,
        responses={200: RiskCheckOutputSerializer, 400: _E400, 401: _E401, 403: _E403, 413: _E413, 415: _E415,
                   422: _E422, 429: _E429, 503: _E503},
    )
    def post(self, request):
        serializer = RiskCheckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        strategy = _strategy(request, serializer.validated_data["strategy_id"])
        if not strategy.enabled:
            raise Unprocessable(f"strategy {strategy.id!r} is disabled: new orders are refused",
                                code="strategy_disabled", strategy_id=strategy.id)
        result = order_risk_check(strategy=strategy, data=serializer.validated_data["request"])
        return Response({"passed": result.passed, "status": result.status,
                         "rejection_reason": result.rejection_reason, "risk_result": result.risk_result,
                         "routing_decision": result.routing_decision})


# -- health ----------------------------------------------------------------------------------------
class HealthApi(APIView):
    """``GET /api/health``."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        summary="Service health",
        description="Database, broker, channel layer (critical), trading node heartbeat, venue adapters (an "
                    "enabled venue that cannot trade in this release, named) and stuck orders (waiting on a hand-off "
                    "or a venue's answer too long: counts, ages, action); the last three reported, not critical. "
                    "`200` when "
                    "every critical part is ok, else `503`. Readable without "
                    "authentication (load balancers, probes); exception texts (`error`) are shown only to "
                    "authenticated callers.",
        auth=[{}, {"knoxApiToken": []}, {"cookieAuth": []}],
        responses={200: HealthOutputSerializer, 503: HealthOutputSerializer},
    )
    def get(self, request):
        report = health_report()
        show_errors = bool(request.user and request.user.is_authenticated)
        checks = {}
        for check in report.checks:
            entry = {"status": check.status, "detail": check.detail, "critical": check.critical,
                     "latency_ms": check.latency_ms}
            if show_errors and check.error:
                entry["error"] = check.error
            if check.workers:
                entry["workers"] = [{"worker": w.worker, "hostname": w.hostname, "status": w.state, "detail": w.detail,
                                     "heartbeat_age_secs": w.age_secs} for w in check.workers]
            checks[check.name] = entry
        body = {"status": report.status, "ts": report.ts.isoformat().replace("+00:00", "Z"), "checks": checks}
        return Response(body, status=status.HTTP_200_OK if report.healthy else status.HTTP_503_SERVICE_UNAVAILABLE)
