"""Serializers of the order API: JSON ⇄ Python types. Business rules live in the services.

Numbers
-------
Prices, quantities and amounts are decimals end to end. In requests they are accepted as JSON
**strings** (``"0.01"``) or JSON **integers** (``5``, at most 18 digits); JSON numbers with a fraction or exponent
(``0.01``, ``1e3``) are refused with a 400, because a JSON parser turns them into binary floats
and ``0.1`` is not ``0.1`` in binary — an order API must not round a client's price. A decimal inside a
JSON object (``exec_algorithm_params``, ``expected_deltas``) is read by the same rule
(:func:`odum_live.fields.decimal_input`). Responses give
every decimal as a canonical string (``"0.01"``, never ``"0.010000000000000000"``).

Times are ISO-8601; a time without an offset is taken as UTC. Responses use UTC with ``Z``.
"""

from __future__ import annotations

import copy
from datetime import timezone as dt_timezone
from decimal import Decimal

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from odum_live.fields import (
    DECIMAL_INTEGER_MAX,
    DECIMAL_PLACES,
    DECIMAL_STRING_PATTERN,
    MAX_DIGITS,
    NUL_REASON,
    DecimalInputError,
    NulCharacterError,
    decimal_input,
    refuse_nul,
)
from orders.algorithms import MAX_HORIZON_SECS, MAX_SLICES, format_decimal
from orders.models import Order, OrderEvent
from orders.services.request import (
    OPERATION_ID_MAX_LENGTH,
    OrderRequestExpired,
    OrderRequestInvalid,
    order_request_build,
)

#: Fields only the server sets: a request naming one is refused (mass-assignment guard).
SERVER_OWNED_FIELDS = frozenset({
    "id", "order_id", "client_order_id", "status", "filled_quantity", "leaves_quantity", "avg_fill_price", "fees",
    "venue", "venue_type", "venue_order_id", "routed_instrument_key", "fills", "events", "children", "risk_result",
    "routing_decision", "rejection_reason", "error_message", "request_fingerprint", "created_by", "created_at",
    "updated_at", "submitted_at", "accepted_at", "closed_at", "dispatched_at", "parent", "parent_id",
    "parent_order_id", "strategy",
})
#: Deepest nesting of a JSON object field (``metadata``, ``exec_algorithm_params``, ``expected_deltas``), in
#: levels of objects and arrays. Deeper values overflowed the interpreter's stack in the request fingerprint.
MAX_JSON_DEPTH = 64
#: Largest ``sequence_in_group``: the column is a PositiveIntegerField, a 32-bit ``integer`` on PostgreSQL.
SEQUENCE_IN_GROUP_MAX = 2**31 - 1


class StrictDecimalField(serializers.DecimalField):
    """A decimal given as a JSON string or integer (NUMERIC(36,18)); JSON floats are refused.

    Input is read by :func:`odum_live.fields.decimal_input`, the rule of every decimal of a request, inside
    JSON objects too: a string must match :data:`~odum_live.fields.DECIMAL_STRING_PATTERN`, the pattern the
    OpenAPI schema gives, and an integer lie within the schema's ``minimum`` / ``maximum`` (18 digits), so a
    client generated from the schema and the API take the same values. DRF's
    ``DecimalField`` trims edge whitespace and reads anything :class:`decimal.Decimal` reads (``"1e3"``,
    ``"+1"``, ``"1_000"``, non-ASCII digits) and, where null is allowed, takes ``""`` for null; here those
    are a 400 naming the field, with the reason of :data:`~odum_live.fields.DECIMAL_INPUT_REASONS`.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", MAX_DIGITS)
        kwargs.setdefault("decimal_places", DECIMAL_PLACES)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        # DRF's DecimalField takes "" and "  " for null when null is allowed; the schema's null is JSON null.
        return serializers.Field.validate_empty_values(self, data)

    def to_internal_value(self, data):
        try:
            decimal_input(data)
        except DecimalInputError as exc:
            raise serializers.ValidationError(exc.reason, code=exc.code) from None
        return super().to_internal_value(data)  # DRF's quantized Decimal, as the services always had it

    def to_representation(self, value):
        return None if value is None else format_decimal(Decimal(value))


#: The OpenAPI schema of a request decimal: what :func:`odum_live.fields.decimal_input` takes (the string's
#: pattern, the integer's bounds: 18 digits).
DECIMAL_INPUT_SCHEMA = {
    "oneOf": [
        {"type": "string", "format": "decimal", "pattern": DECIMAL_STRING_PATTERN, "example": "0.01"},
        {"type": "integer", "minimum": -DECIMAL_INTEGER_MAX, "maximum": DECIMAL_INTEGER_MAX},
    ]
}


@extend_schema_field(DECIMAL_INPUT_SCHEMA)
class DecimalInputField(StrictDecimalField):
    """Request decimal: a decimal string (up to 18 integer and 18 fraction digits) or a JSON integer (up to 18
    digits)."""


class RefuseNulMixin:
    """Refuse a string input holding the NUL character with the project's reason, before the field reads it.

    Mixed in before a DRF field class. The 400 gives :data:`odum_live.fields.NUL_REASON` under the field
    (:func:`odum_live.fields.refuse_nul`), where DRF answered with its own words ("Null characters are not
    allowed." for text, "\"BUY\\x00\" is not a valid choice." for a choice), so every input says the same.
    """

    default_error_messages = {"null_character": NUL_REASON}

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                refuse_nul(data, field=self.field_name)
            except NulCharacterError:
                self.fail("null_character")
        return super().to_internal_value(data)


class StrictCharField(RefuseNulMixin, serializers.CharField):
    """Text given as a JSON string; a number, boolean, array or object is refused.

    DRF's ``CharField`` takes a JSON number as its ``str()``: ``0`` became ``"0"`` and
    ``1.00000000000000001`` became ``"1.0"``, so two keys the client tells apart could be one
    ``operation_id``. A text holding the NUL character is refused with the project's reason
    (:class:`RefuseNulMixin`), not DRF's "Null characters are not allowed.".
    """

    default_error_messages = {"not_string": "must be a JSON string, got {kind}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_string", kind=_json_kind(data))
        return super().to_internal_value(data)


#: Every character ``str.strip()`` removes (``str.isspace()``), as a regex class body that ECMA-262 and Python's
#: ``re`` read alike (listed, not ``\s``: the two engines' ``\s`` differ, e.g. on "\x1c" and "\ufeff").
_WHITESPACE_CLASS = r"\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_NOT_NUL = r"[^\u0000]"
#: The schema's ``pattern`` of a text input: no NUL character (:class:`RefuseNulMixin`). At least one character:
#: drf-spectacular puts a field that may be blank in ``oneOf`` with ``{"maxLength": 0}``, which "" must match alone.
TEXT_PATTERN = rf"^{_NOT_NUL}+$"
#: ... of a trimmed text that must not be blank: no NUL and at least one character trimming keeps.
NON_BLANK_TEXT_PATTERN = rf"^{_NOT_NUL}*[^\u0000{_WHITESPACE_CLASS}]{_NOT_NUL}*$"
#: ... of a text query parameter (``strategy``, ``q`` …): no NUL character (:func:`odum_live.fields.refuse_nul`).
TEXT_PARAMETER_PATTERN = rf"^{_NOT_NUL}*$"


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """OpenAPI schema of a :class:`StrictCharField` input: DRF's (length bounds) plus the ``pattern`` of what it
    refuses besides: a NUL character, and whitespace alone where it trims and refuses blank text (" " is "")."""

    target_class = StrictCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            field = self.target
            blank_refused = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = NON_BLANK_TEXT_PATTERN if blank_refused else TEXT_PATTERN
        return schema


class StrictChoiceField(RefuseNulMixin, serializers.ChoiceField):
    """One of ``choices``, given exactly (no trimming); a NUL character is refused with the project's reason
    (:class:`RefuseNulMixin`), not DRF's "is not a valid choice"."""


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON integer, as the schema's ``type: integer`` says; anything else is refused.

    DRF's ``IntegerField`` also takes strings: ``"5"``, ``" 5"``, ``"5.0"`` and non-ASCII digits (``"５"``,
    ``"٥"``) were 5, which a client generated from the schema never sends and the schema refuses.
    """

    default_error_messages = {"not_integer": "must be a JSON integer, got {kind}."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            kind = f"a string ({data!r})" if isinstance(data, str) else _json_kind(data)
            self.fail("not_integer", kind=kind)
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JsonObjectField(serializers.JSONField):
    """A JSON object (``{}``); other JSON values, nesting deeper than :data:`MAX_JSON_DEPTH` levels and
    NUL characters in its keys or strings are refused.

    PostgreSQL's ``jsonb`` cannot store ``\\u0000`` (it refuses the INSERT: "unsupported Unicode
    escape sequence"), so the character is refused here, on every database alike, as DRF's
    ``CharField`` does for text.
    """

    default_error_messages = {
        "not_object": "must be a JSON object.",
        "too_deep": f"must be nested at most {MAX_JSON_DEPTH} levels deep.",
        "null_character": f"{NUL_REASON} in a key or string (at {{path}}): PostgreSQL's jsonb cannot store it.",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        if _deeper_than(value, MAX_JSON_DEPTH):  # first: the walks below (and the fingerprint) recurse
            self.fail("too_deep")
        path = _nul_path(value, "")
        if path is not None:
            self.fail("null_character", path=path or "the top level")
        return value


@extend_schema_field({"type": "object", "additionalProperties": DECIMAL_INPUT_SCHEMA})
class DecimalMapField(JsonObjectField):
    """A JSON object of name → request decimal (``expected_deltas``: asset → signed amount).

    Its schema gives each value the schema of a request decimal; the values themselves are read by
    :func:`orders.services.request.order_request_build` (:func:`odum_live.fields.decimal_input`), which
    names the key of a value it refuses.
    """


_SECONDS_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_HORIZON_SECS}
#: The OpenAPI schema of ``exec_algorithm_params``: every algorithm's parameters (:data:`orders.algorithms.
#: ALGORITHM_PARAMS`) with their types and bounds, no other name. Which algorithm takes which, and the rules
#: across parameters (interval ≤ horizon, one weight per interval), only the API's 400 can say.
EXEC_ALGORITHM_PARAMS_SCHEMA = {
    "type": "object",
    "properties": {
        "horizon_secs": {**_SECONDS_SCHEMA, "description": "TWAP, VWAP: length of the schedule, seconds."},
        "interval_secs": {**_SECONDS_SCHEMA, "description": "TWAP, VWAP: time between slices, seconds; at most "
                                                            f"horizon_secs and at most {MAX_SLICES} slices."},
        "max_participation": {**DECIMAL_INPUT_SCHEMA, "description": "VWAP: largest fraction of the market volume "
                                                                     "traded per interval, in (0, 1]."},
        "volume_profile": {"type": "array", "items": DECIMAL_INPUT_SCHEMA, "minItems": 1, "maxItems": MAX_SLICES,
                           "description": "VWAP, optional: one non-negative weight per interval "
                                          "(horizon_secs // interval_secs of them), not all zero."},
        "display_qty": {**DECIMAL_INPUT_SCHEMA, "description": "ICEBERG: visible quantity in base units, "
                                                               "0 < display_qty < quantity."},
    },
    "additionalProperties": False,
}


@extend_schema_field(EXEC_ALGORITHM_PARAMS_SCHEMA)
class ExecAlgorithmParamsField(JsonObjectField):
    """``exec_algorithm_params`` of a request: a JSON object, read by
    :func:`orders.algorithms.validate_exec_algorithm_params`; its schema is :data:`EXEC_ALGORITHM_PARAMS_SCHEMA`."""


def _deeper_than(value, limit: int) -> bool:
    # Whether objects / arrays nest more than ``limit`` levels ({"a": 1} is 1). Iterative: a
    # recursive walk would overflow the stack on the very values it must refuse.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _nul_path(value, path: str) -> str | None:
    # Where the first key or string holding "\x00" is (e.g. "note", "legs[1].venue"); None if nowhere.
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else (str(key) or '""')
            if "\x00" in str(key):
                return here.replace("\x00", "\\u0000")
            found = _nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _dec(value):
    return None if value is None else format_decimal(value)


def _dt(value):
    if value is None:
        return None
    return value.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------
class OrderCreateInputSerializer(serializers.Serializer):
    """The seeds' JSON order message (client-supplied fields only).

    ``validated_data``: ``{"strategy_id": str | None, "request": OrderRequest}``. A GTD request whose
    ``expire_time`` has passed is let through (:class:`~orders.services.request.OrderRequestExpired`):
    :func:`orders.services.order_submit` answers it only when it replays a stored order, and raises
    ``OrderRequestInvalid`` naming ``expire_time`` otherwise — callers turn that into their 400.
    """

    #: Let a passed expire_time through to order_submit (a replay may still be answered).
    expired_request_passes = True

    strategy_id = StrictCharField(
        required=False, allow_blank=False, max_length=64,
        help_text="Strategy the order belongs to. Required for people (session / personal token); optional for a "
                  "strategy service token, which implies its own strategy (naming another one is a 403).",
    )
    # Not trimmed: "op-1 " is not "op-1" (it would silently be the same idempotency key); the
    # no-whitespace rule of order_request_build refuses it.
    operation_id = StrictCharField(
        max_length=OPERATION_ID_MAX_LENGTH, trim_whitespace=False,
        help_text="The client's idempotency key, unique per strategy: resending the same operation_id with the "
                  "same body returns the stored order (200, nothing re-sent); with a different body it is a 409. "
                  "Printable characters only, no whitespace anywhere (Python's str.isprintable, which also "
                  "refuses control, format and unassigned characters), taken as sent: not trimmed.",
    )
    instrument_key = StrictCharField(
        max_length=128,
        help_text="Canonical instrument key [ASSET_CLASS:]VENUE:INSTRUMENT_TYPE:PAYLOAD[@SUFFIX], e.g. "
                  "BINANCE-SPOT:SPOT_PAIR:BTC-USDT; venue ANY lets the router choose (ANY:PERPETUAL:BTC-USDT@LIN).",
    )
    side = StrictChoiceField(choices=Order.Side.choices, help_text="BUY/SELL for trades and swaps; "
                             "SUPPLY/BORROW/STAKE/WITHDRAW for those operations; BACK/LAY for bets.")
    quantity = DecimalInputField(help_text="Order quantity in base units (contracts for derivatives), > 0. "
                                  "Decimal string or JSON integer.")
    price = DecimalInputField(required=False, allow_null=True,
                               help_text="Limit price in quote currency, > 0: required for LIMIT, omitted for MARKET.")
    order_type = StrictChoiceField(choices=Order.OrderType.choices, help_text="MARKET or LIMIT.")
    time_in_force = StrictChoiceField(choices=Order.TimeInForce.choices, required=False,
                                      help_text="GTC (default), IOC, FOK or GTD (then expire_time is required).")
    expire_time = serializers.DateTimeField(required=False, allow_null=True,
                                            help_text="Expiry (ISO-8601, UTC if no offset) for GTD orders only; "
                                                      "must be in the future.")
    exec_algorithm = StrictChoiceField(choices=Order.ExecAlgorithm.choices, required=False,
                                       help_text="NORMAL (default), TWAP, VWAP or ICEBERG.")
    exec_algorithm_params = ExecAlgorithmParamsField(
        required=False,
        help_text="Per algorithm: TWAP {horizon_secs, interval_secs} (positive integer seconds, interval ≤ horizon); "
                  "VWAP the same plus max_participation (decimal in (0, 1]) and optionally volume_profile (one "
                  "non-negative decimal weight per interval, not all zero); ICEBERG {display_qty} (decimal, base "
                  "units, 0 < display_qty < quantity; LIMIT only); NORMAL takes none. Each decimal is written as "
                  "quantity is: a decimal string (optional \"-\", at most 18 digits, optional \".\" and at most 18 "
                  "more; no whitespace, exponent, \"+\" or \"_\") or a JSON integer of at most 18 digits. An "
                  "error is keyed by the parameter's name.",
    )
    operation = StrictChoiceField(choices=Order.Operation.choices, required=False,
                                  help_text="trade (default), supply, borrow, stake, withdraw, swap, transfer, bet.")
    tx_hash = StrictCharField(required=False, allow_blank=True, max_length=80,
                                    help_text="DeFi: transaction hash, when the client already broadcast it.")
    gas_used = DecimalInputField(required=False, allow_null=True, help_text="DeFi: gas used, in gas units, ≥ 0.")
    gas_price_gwei = DecimalInputField(required=False, allow_null=True, help_text="DeFi: gas price in gwei, ≥ 0.")
    contract_address = StrictCharField(required=False, allow_blank=True, max_length=80,
                                             help_text="DeFi: contract address (hex).")
    source_token = StrictCharField(required=False, allow_blank=True, max_length=32,
                                         help_text="DeFi swap: token sold (symbol).")
    target_token = StrictCharField(required=False, allow_blank=True, max_length=32,
                                         help_text="DeFi swap: token bought (symbol).")
    max_slippage = DecimalInputField(required=False, allow_null=True,
                                      help_text="Maximum slippage as a fraction in [0, 1] (0.005 = 50 bps).")
    atomic_group_id = StrictCharField(required=False, allow_blank=True, max_length=128,
                                            help_text="Orders sharing it form one atomic group.")
    sequence_in_group = StrictIntegerField(
        required=False, allow_null=True, min_value=0, max_value=SEQUENCE_IN_GROUP_MAX,
        error_messages={"max_value": "must be at most {max_value}: it is stored as a 32-bit integer "
                                     "(PostgreSQL integer, Django PositiveIntegerField)."},
        help_text=f"Position in the atomic group (integer, 0 to {SEQUENCE_IN_GROUP_MAX}); needs atomic_group_id.",
    )
    odds = DecimalInputField(required=False, allow_null=True,
                              help_text="Sports bets: decimal (European) odds, > 1; required for operation bet.")
    selection = StrictCharField(required=False, allow_blank=True, max_length=200,
                                      help_text="Sports bets: the selection backed or laid.")
    potential_payout = DecimalInputField(required=False, allow_null=True,
                                          help_text="Sports bets: potential payout in the stake currency, ≥ 0.")
    source_venue = StrictCharField(required=False, allow_blank=True, max_length=32,
                                         help_text="Transfers: venue the funds leave (operation transfer only).")
    target_venue = StrictCharField(required=False, allow_blank=True, max_length=32,
                                         help_text="Transfers: venue the funds go to (operation transfer only).")
    expected_deltas = DecimalMapField(required=False,
                                      help_text="Expected balance changes: asset → signed decimal, e.g. "
                                                "{\"BTC\": \"0.01\", \"USDT\": \"-400\"} (≤ 16 KiB of JSON); each "
                                                "written as quantity is (a decimal string of its pattern or a JSON "
                                                "integer of at most 18 digits). An error names the asset: "
                                                "\"BTC: <reason>\".")
    metadata = JsonObjectField(required=False, help_text="Free client data stored with the order (≤ 16 KiB of JSON).")

    def get_fields(self):
        # DRF deep-copies every declared field for each serializer instance (each field rebuilt from
        # deep copies of its arguments): 0.4 ms of this 28-field message per request on the
        # submission hot path. The fields are bound per instance (bind() sets name, parent and
        # source on the copy) but none is changed afterwards, so a shallow copy of each suffices.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for name in sorted(set(data) - set(self.fields)):
                if name == "strategy":
                    errors[name] = ["is not accepted: name the strategy with strategy_id"]
                elif name in SERVER_OWNED_FIELDS:
                    errors[name] = ["is set by the server and cannot be supplied by a client"]
                else:
                    errors[name] = ["is not a field of the order message"]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def validate(self, attrs):
        attrs = dict(attrs)
        strategy_id = attrs.pop("strategy_id", None)
        try:
            request = order_request_build(**attrs)
        except OrderRequestExpired as exc:
            if not self.expired_request_passes:
                raise serializers.ValidationError(exc.errors) from None
            request = exc.request
        except OrderRequestInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None
        return {"strategy_id": strategy_id, "request": request}


class RiskCheckInputSerializer(OrderCreateInputSerializer):
    """The order message for a what-if check: ``operation_id`` is optional (nothing is stored)."""

    expired_request_passes = False  # nothing to replay: a passed expire_time is a 400 here

    operation_id = StrictCharField(required=False, max_length=OPERATION_ID_MAX_LENGTH, trim_whitespace=False,
                                         help_text="Optional; ignored (a what-if creates no order).")

    def validate(self, attrs):
        attrs = dict(attrs)
        attrs.setdefault("operation_id", "what-if")
        return super().validate(attrs)


class OrderCancelInputSerializer(serializers.Serializer):
    """Optional body of a cancel request."""

    reason = StrictCharField(required=False, allow_blank=True, max_length=500,
                                   help_text="Why the order is canceled (recorded on the order's timeline).")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({n: ["is not a field of a cancel request"] for n in unknown})
        return super().to_internal_value(data)


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------
class FillOutputSerializer(serializers.Serializer):
    """An execution (fill)."""

    venue = serializers.CharField(help_text="Venue code.")
    venue_trade_id = serializers.CharField(
        help_text="The venue's trade id: unique per listing of the venue (the order's routed_instrument_key), "
                  "as Binance and OKX number trades per symbol, and side (a self-trade between two of our "
                  "orders is one trade id for both).")
    price = StrictDecimalField(help_text="Execution price in quote currency.")
    quantity = StrictDecimalField(help_text="Executed quantity in base units.")
    fee = StrictDecimalField(help_text="Fee, in fee_currency.")
    fee_currency = serializers.CharField(help_text="Currency of the fee.")
    liquidity = serializers.ChoiceField(choices=["MAKER", "TAKER", "UNKNOWN"], help_text="MAKER, TAKER or UNKNOWN.")
    ts_event = serializers.DateTimeField(help_text="Venue execution time (UTC).")

    def to_representation(self, fill):
        return {
            "venue": fill.venue,
            "venue_trade_id": fill.venue_trade_id,
            "price": _dec(fill.price),
            "quantity": _dec(fill.quantity),
            "fee": _dec(fill.fee),
            "fee_currency": fill.fee_currency,
            "liquidity": fill.liquidity,
            "ts_event": _dt(fill.ts_event),
        }


class OrderOutputSerializer(serializers.Serializer):
    """An order as the API returns it (the seeds' order response)."""

    order_id = serializers.UUIDField(help_text="Our order id (UUIDv7, time-ordered).")
    client_order_id = serializers.CharField(help_text="Id sent to venues, derived from order_id (24 characters).")
    operation_id = serializers.CharField(help_text="The client's idempotency key.")
    strategy_id = serializers.CharField(help_text="Owning strategy.")
    status = serializers.ChoiceField(choices=Order.Status.choices, help_text="Order status (DESIGN.md state machine).")
    rejection_reason = serializers.CharField(help_text="Why the order was DENIED (check, limit, observed value) "
                                             "or REJECTED by the venue; empty otherwise.")
    error_message = serializers.CharField(help_text="Last error reported for the order; empty if none.")
    operation = serializers.CharField(help_text="trade, supply, borrow, stake, withdraw, swap, transfer or bet.")
    instrument_key = serializers.CharField(help_text="Instrument key as requested (may be ANY:…).")
    routed_instrument_key = serializers.CharField(help_text="Listing the router chose; empty if none.")
    venue = serializers.CharField(help_text="Venue code the router chose; empty if none.")
    venue_type = serializers.CharField(help_text="NAUTILUS or EXTERNAL_SDK; empty if not routed.")
    venue_order_id = serializers.CharField(help_text="The venue's order id once known; empty before.")
    side = serializers.CharField(help_text="BUY, SELL, SUPPLY, BORROW, STAKE, WITHDRAW, BACK or LAY.")
    order_type = serializers.CharField(help_text="MARKET or LIMIT.")
    quantity = StrictDecimalField(help_text="Order quantity in base units.")
    price = StrictDecimalField(allow_null=True, help_text="Limit price in quote currency; null for MARKET.")
    time_in_force = serializers.CharField(help_text="GTC, IOC, FOK or GTD.")
    expire_time = serializers.DateTimeField(allow_null=True, help_text="GTD expiry (UTC); null otherwise.")
    exec_algorithm = serializers.CharField(help_text="NORMAL, TWAP, VWAP or ICEBERG.")
    exec_algorithm_params = JsonObjectField(help_text="Normalised algorithm parameters (seconds as integers, "
                                            "fractions and quantities as decimal strings).")
    filled_quantity = StrictDecimalField(help_text="Executed quantity in base units (a TWAP / VWAP / ICEBERG "
                                         "parent's: its family's, its slices' fills included).")
    leaves_quantity = StrictDecimalField(help_text="Quantity still open in base units; 0 once terminal.")
    avg_fill_price = StrictDecimalField(allow_null=True, help_text="Average execution price in quote currency "
                                        "(an algorithm parent's: over its family's fills).")
    fees = StrictDecimalField(help_text=(
        "Σ fee of the fills the order's filled_quantity counts (an algorithm parent's: its family's), each in its "
        "fill's fee_currency — not converted, so fills paid in different currencies (0.4 USDT and 0.00001 BNB) give "
        "a number of no one currency (0.40001). The total per currency is the order detail's fee_totals."))
    fills = serializers.SerializerMethodField(help_text=(
        "Executions booked on this order, oldest first. A TWAP / VWAP / ICEBERG parent's slices are orders with "
        "fills of their own: here (the list, the submit and cancel answers) a parent lists only its own, which need "
        "not add up to its filled_quantity; GET /api/orders/{order_id} lists its family's."))
    risk_result = JsonObjectField(help_text="Pre-trade risk result: passed, every check with limit and observed value.")
    routing_decision = JsonObjectField(help_text="Router decision: candidates with their costs, chosen venue, reason.")
    parent_order_id = serializers.UUIDField(allow_null=True, help_text="Parent order of an algorithm slice; null.")
    tx_hash = serializers.CharField(help_text="DeFi transaction hash.")
    gas_used = StrictDecimalField(allow_null=True, help_text="DeFi gas used (gas units).")
    gas_price_gwei = StrictDecimalField(allow_null=True, help_text="DeFi gas price (gwei).")
    contract_address = serializers.CharField(help_text="DeFi contract address.")
    source_token = serializers.CharField(help_text="DeFi token sold.")
    target_token = serializers.CharField(help_text="DeFi token bought.")
    max_slippage = StrictDecimalField(allow_null=True, help_text="Maximum slippage fraction (0.005 = 50 bps).")
    atomic_group_id = serializers.CharField(help_text="Atomic group id; empty if none.")
    sequence_in_group = serializers.IntegerField(allow_null=True, help_text="Position in the atomic group.")
    odds = StrictDecimalField(allow_null=True, help_text="Decimal odds (bets).")
    selection = serializers.CharField(help_text="Selection (bets).")
    potential_payout = StrictDecimalField(allow_null=True, help_text="Potential payout (bets).")
    source_venue = serializers.CharField(help_text="Transfer source venue.")
    target_venue = serializers.CharField(help_text="Transfer target venue.")
    expected_deltas = JsonObjectField(help_text="Expected balance changes: asset → signed decimal string.")
    metadata = JsonObjectField(help_text="Client metadata as submitted.")
    created_by = serializers.CharField(help_text="User or strategy service account that submitted the order.")
    created_at = serializers.DateTimeField(help_text="When the order was recorded (UTC).")
    updated_at = serializers.DateTimeField(help_text="Last change (UTC).")
    dispatched_at = serializers.DateTimeField(allow_null=True, help_text="Last hand-off to the trading worker (UTC).")
    submitted_at = serializers.DateTimeField(allow_null=True, help_text="Sent to the venue (UTC).")
    accepted_at = serializers.DateTimeField(allow_null=True, help_text="Acknowledged by the venue (UTC).")
    closed_at = serializers.DateTimeField(allow_null=True, help_text="Reached a terminal status (UTC).")

    @extend_schema_field(FillOutputSerializer(many=True))
    def get_fills(self, order):
        if self.context.get("new_order"):
            return []  # just inserted in this request: no fill can exist yet (spares a query)
        return [FillOutputSerializer().to_representation(f) for f in order.fills.all()]

    def to_representation(self, order):
        # Explicit and flat on purpose: this runs on the submit hot path (declared fields above are
        # the documented contract; a test keeps both in step).
        return {
            "order_id": str(order.id),
            "client_order_id": order.client_order_id,
            "operation_id": order.operation_id,
            "strategy_id": order.strategy_id,
            "status": order.status,
            "rejection_reason": order.rejection_reason,
            "error_message": order.error_message,
            "operation": order.operation,
            "instrument_key": order.instrument_key,
            "routed_instrument_key": order.routed_instrument_key,
            "venue": order.venue,
            "venue_type": order.venue_type,
            "venue_order_id": order.venue_order_id,
            "side": order.side,
            "order_type": order.order_type,
            "quantity": _dec(order.quantity),
            "price": _dec(order.price),
            "time_in_force": order.time_in_force,
            "expire_time": _dt(order.expire_time),
            "exec_algorithm": order.exec_algorithm,
            "exec_algorithm_params": order.exec_algorithm_params,
            "filled_quantity": _dec(order.filled_quantity),
            "leaves_quantity": _dec(order.leaves_quantity),
            "avg_fill_price": _dec(order.avg_fill_price),
            "fees": _dec(order.fees),
            "fills": self.get_fills(order),
            "risk_result": order.risk_result,
            "routing_decision": order.routing_decision,
            "parent_order_id": None if order.parent_id is None else str(order.parent_id),
            "tx_hash": order.tx_hash,
            "gas_used": _dec(order.gas_used),
            "gas_price_gwei": _dec(order.gas_price_gwei),
            "contract_address": order.contract_address,
            "source_token": order.source_token,
            "target_token": order.target_token,
            "max_slippage": _dec(order.max_slippage),
            "atomic_group_id": order.atomic_group_id,
            "sequence_in_group": order.sequence_in_group,
            "odds": _dec(order.odds),
            "selection": order.selection,
            "potential_payout": _dec(order.potential_payout),
            "source_venue": order.source_venue,
            "target_venue": order.target_venue,
            "expected_deltas": order.expected_deltas,
            "metadata": order.metadata,
            "created_by": order.created_by,
            "created_at": _dt(order.created_at),
            "updated_at": _dt(order.updated_at),
            "dispatched_at": _dt(order.dispatched_at),
            "submitted_at": _dt(order.submitted_at),
            "accepted_at": _dt(order.accepted_at),
            "closed_at": _dt(order.closed_at),
        }


class OrderEventOutputSerializer(serializers.Serializer):
    """One entry of the order's timeline."""

    type = serializers.ChoiceField(choices=OrderEvent.Type.choices, help_text="What happened.")
    status_before = serializers.CharField(help_text="Order status before (empty for RECEIVED).")
    status_after = serializers.CharField(help_text="Order status after.")
    actor = serializers.CharField(help_text="User, strategy service or component (risk, router, dispatcher, worker:<host>).")
    payload = JsonObjectField(help_text="Figures of the event (reason, venue, command, error …).")
    ts = serializers.DateTimeField(help_text="When it happened (UTC).")

    def to_representation(self, event):
        return {"type": event.type, "status_before": event.status_before, "status_after": event.status_after,
                "actor": event.actor, "payload": event.payload, "ts": _dt(event.ts)}


class ChildOrderOutputSerializer(serializers.Serializer):
    """A child order (algorithm slice) in short."""

    order_id = serializers.UUIDField(help_text="Child order id.")
    client_order_id = serializers.CharField(help_text="Id sent to the venue.")
    status = serializers.CharField(help_text="Child order status.")
    order_type = serializers.CharField(help_text="MARKET or LIMIT.")
    quantity = StrictDecimalField(help_text="Slice quantity in base units.")
    price = StrictDecimalField(allow_null=True, help_text="Limit price in quote currency; null for MARKET.")
    filled_quantity = StrictDecimalField(help_text="Executed quantity in base units.")
    avg_fill_price = StrictDecimalField(allow_null=True, help_text="Average execution price in quote currency.")
    venue = serializers.CharField(help_text="Venue code.")
    created_at = serializers.DateTimeField(help_text="When the slice was created (UTC).")

    def to_representation(self, child):
        return {"order_id": str(child.id), "client_order_id": child.client_order_id, "status": child.status,
                "order_type": child.order_type, "quantity": _dec(child.quantity), "price": _dec(child.price),
                "filled_quantity": _dec(child.filled_quantity), "avg_fill_price": _dec(child.avg_fill_price),
                "venue": child.venue, "created_at": _dt(child.created_at)}


class FamilyFillOutputSerializer(FillOutputSerializer):
    """An execution of an algorithm's family: the parent's own or one of its child orders' (slices')."""

    order_id = serializers.UUIDField(required=False, help_text=(
        "Order the fill was booked on: the parent itself or one of its child orders (algorithm slices). Given "
        "in the detail of a TWAP / VWAP / ICEBERG parent only; a plain order's fills are all its own."))

    def to_representation(self, fill):
        return {**super().to_representation(fill), "order_id": str(fill.order_id)}


class FeeTotalOutputSerializer(serializers.Serializer):
    """The fees paid in one currency (:class:`orders.fills.FeeTotal`)."""

    currency = serializers.CharField(help_text="Fee currency, as the fills name it (USDT, BNB, BTC …).")
    amount = StrictDecimalField(help_text="Σ fee in this currency (a maker rebate counts negative).")

    def to_representation(self, total):
        return {"currency": total.currency, "amount": _dec(total.amount)}


class OrderDetailOutputSerializer(OrderOutputSerializer):
    """An order with its child orders and its timeline; an algorithm parent's fills are its family's.

    ``order`` comes from :func:`orders.selectors.order_get_detail` (``family_fills`` set).
    """

    fills = serializers.SerializerMethodField(help_text=(
        "Executions, oldest first. For a TWAP / VWAP / ICEBERG parent, those of its whole family (the parent's "
        "own and its child orders', each naming its order_id), which its filled_quantity, avg_fill_price and "
        "fees add up; for any other order its own."))
    fee_totals = FeeTotalOutputSerializer(many=True, help_text=(
        "Fees of the listed fills totalled per fee currency, the currency paid first leading; empty without fills. "
        "Amounts of different currencies are not added (fees is their plain sum)."))
    children = ChildOrderOutputSerializer(many=True, help_text="Child orders (algorithm slices), oldest first.")
    events = OrderEventOutputSerializer(many=True, help_text="Timeline, oldest first.")

    @extend_schema_field(FamilyFillOutputSerializer(many=True))
    def get_fills(self, order):
        if order.exec_algorithm == Order.ExecAlgorithm.NORMAL:  # a plain order or a slice: its own fills
            return super().get_fills(order)
        return [FamilyFillOutputSerializer().to_representation(f) for f in order.family_fills.fills]

    def to_representation(self, order):
        data = super().to_representation(order)
        data["fee_totals"] = [FeeTotalOutputSerializer().to_representation(t) for t in order.family_fills.fee_totals]
        data["children"] = [ChildOrderOutputSerializer().to_representation(c) for c in order.children.all()]
        data["events"] = [OrderEventOutputSerializer().to_representation(e) for e in order.events.all()]
        return data


class RiskCheckOutputSerializer(serializers.Serializer):
    """What an order would get now (nothing recorded)."""

    passed = serializers.BooleanField(help_text="True when the order would be ROUTED.")
    status = serializers.ChoiceField(choices=["ROUTED", "DENIED"], help_text="The status the order would get.")
    rejection_reason = serializers.CharField(help_text="Why it would be DENIED; empty when it would pass.")
    risk_result = JsonObjectField(help_text="Full pre-trade risk result: every check with its limit and observed value.")
    routing_decision = JsonObjectField(help_text="Full routing decision: candidates, costs, chosen venue, reason.")


def _other_fees_field() -> serializers.DictField:
    # A position's fees in a third currency (positions.models.Position.other_fees), summed per currency.
    return serializers.DictField(child=StrictDecimalField(), help_text=(
        "Fees paid in a currency that is neither pnl_currency nor the pair's other currency (e.g. BNB on Binance), "
        "currency → amount (decimal string), summed per currency; {} when none. No rate converts them, so they "
        "are in neither fees nor realized_pnl."))


def _decimal_map(amounts):
    return {currency: _dec(amount) for currency, amount in amounts.items()}


class VenuePositionOutputSerializer(serializers.Serializer):
    """The position on one venue listing."""

    venue = serializers.CharField(help_text="Venue code.")
    instrument_key = serializers.CharField(help_text="Canonical key of the listing.")
    quantity = StrictDecimalField(help_text="Signed quantity in the listing's own unit: base units, contracts for "
                                  "derivatives (positive long, negative short).")
    avg_entry_price = StrictDecimalField(allow_null=True, help_text="Average entry price in quote currency; null "
                                         "when flat or when strategies hold opposite sides.")
    mark_price = StrictDecimalField(allow_null=True, help_text="Latest mark price in quote currency.")
    realized_pnl = StrictDecimalField(help_text=(
        "Realized PnL in pnl_currency, net of fees (the fees paid in pnl_currency and in the pair's other currency, "
        "converted at their fill price); not net of other_fees."))
    unrealized_pnl = StrictDecimalField(help_text="Unrealized PnL at mark, in pnl_currency.")
    fees = StrictDecimalField(help_text=(
        "Fees paid, in pnl_currency: those paid in it and those paid in the pair's other currency (a Binance spot "
        "buy's BTC), converted at their fill price. Fees in any other currency are in other_fees."))
    other_fees = _other_fees_field()
    pnl_currency = serializers.CharField(help_text=(
        "Currency of realized_pnl, unrealized_pnl and fees: the listing's quote currency; for an inverse listing "
        "its settlement currency (BTC for a Deribit BTC option), else its base currency."))
    strategies = serializers.ListField(child=serializers.CharField(), help_text="Strategies holding it.")
    marked_at = serializers.DateTimeField(allow_null=True, help_text="Time of the mark (UTC).")
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Last change (UTC).")

    def to_representation(self, vp):
        return {"venue": vp.venue, "instrument_key": vp.instrument_key, "quantity": _dec(vp.quantity),
                "avg_entry_price": _dec(vp.avg_entry_price), "mark_price": _dec(vp.mark_price),
                "realized_pnl": _dec(vp.realized_pnl), "unrealized_pnl": _dec(vp.unrealized_pnl),
                "fees": _dec(vp.fees), "other_fees": _decimal_map(vp.other_fees), "pnl_currency": vp.pnl_currency,
                "strategies": list(vp.strategies),
                "marked_at": _dt(vp.marked_at),
                "updated_at": _dt(vp.updated_at)}


class InstrumentPositionOutputSerializer(serializers.Serializer):
    """The position in one canonical instrument, across venues."""

    instrument_key = serializers.CharField(
        help_text="What the figures cover: ANY:<equivalence key> for the instrument on every venue (the list, "
                  "and GET /api/positions/ANY:…), or the listing's own key when one listing was asked for "
                  "(GET /api/positions/BYBIT:PERPETUAL:BTC-USDT@LIN).")
    equivalence_key = serializers.CharField(help_text="Key without venue, e.g. PERPETUAL:BTC-USDT@LIN.")
    quantity = StrictDecimalField(allow_null=True, help_text=(
        "Net signed quantity across venues in base units of the underlying (base_unit), not contracts: each linear "
        "listing's quantity × contract multiplier, each inverse listing's face value (quantity × multiplier, quote "
        "currency) ÷ its mark price, else its average entry price; null when a listing holding a position cannot be "
        "sized (quantity_problem says which and why)."))
    gross_quantity = StrictDecimalField(allow_null=True, help_text="Sum of absolute venue quantities, in the same "
                                        "base units; null likewise.")
    quantity_problem = serializers.CharField(allow_null=True, help_text=(
        "Why quantity and gross_quantity are null, per listing ('; '-separated): its listing no longer exists (no "
        "contract size known), or inverse contracts with neither a mark nor a common entry price; null when they "
        "are known. Each venue line keeps its own quantity in contracts."))
    base_unit = serializers.CharField(help_text="Unit of quantity and gross_quantity: the underlying (BTC).")
    avg_entry_price = StrictDecimalField(allow_null=True, help_text="Average entry price in quote currency; null "
                                         "when flat or when venues hold opposite sides.")
    realized_pnl = StrictDecimalField(allow_null=True, help_text=(
        "Realized PnL summed over the venues, in pnl_currency, net of fees (not of other_fees); null when the "
        "venues' PnL currencies differ (e.g. an inverse BTC-settled and a linear USD-settled listing of one "
        "option): amounts of different currencies are never added, there is no FX source. Each venue keeps its "
        "own, with its pnl_currency."))
    unrealized_pnl = StrictDecimalField(allow_null=True, help_text="Unrealized PnL summed over the venues, in "
                                        "pnl_currency; null likewise.")
    fees = StrictDecimalField(allow_null=True, help_text="Fees summed over the venues, in pnl_currency; null "
                              "likewise. Fees in any other currency are in other_fees.")
    other_fees = _other_fees_field()
    pnl_currency = serializers.CharField(allow_null=True, help_text=(
        "The one currency of realized_pnl, unrealized_pnl and fees, shared by every venue; null when the venues' "
        "PnL currencies differ (the three totals are then null)."))
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Last change (UTC).")
    venues = VenuePositionOutputSerializer(many=True, help_text="Per-venue breakdown, by venue code.")

    def to_representation(self, agg):
        return {"instrument_key": agg.instrument_key, "equivalence_key": agg.equivalence_key,
                "quantity": _dec(agg.quantity), "gross_quantity": _dec(agg.gross_quantity),
                "quantity_problem": agg.quantity_problem or None,
                "base_unit": agg.base_unit, "avg_entry_price": _dec(agg.avg_entry_price),
                "realized_pnl": _dec(agg.realized_pnl),
                "unrealized_pnl": _dec(agg.unrealized_pnl), "fees": _dec(agg.fees),
                "other_fees": _decimal_map(agg.other_fees),
                "pnl_currency": agg.pnl_currency or None, "updated_at": _dt(agg.updated_at),
                "venues": [VenuePositionOutputSerializer().to_representation(v) for v in agg.venues]}


class PositionListOutputSerializer(serializers.Serializer):
    """All visible positions, one entry per canonical instrument."""

    count = serializers.IntegerField(help_text="Number of instruments.")
    results = InstrumentPositionOutputSerializer(many=True, help_text="Ordered by equivalence key.")


class HealthWorkerOutputSerializer(serializers.Serializer):
    """One trading worker, from its own heartbeat."""

    worker = serializers.CharField(help_text="Worker id: the Celery worker's node name (name@host), else host:pid.")
    hostname = serializers.CharField(help_text="Host name the worker reported.")
    status = serializers.ChoiceField(choices=["ok", "down", "unknown", "stopped"],
                                     help_text="ok; down (heartbeat stale or node not ready); unknown (unreadable); "
                                               "stopped (stopped cleanly: shown for NODE_STOPPED_SHOWN_SECS).")
    detail = serializers.CharField(help_text="One line on the worker's state.")
    heartbeat_age_secs = serializers.FloatField(allow_null=True, help_text="Age of its last heartbeat, seconds.")


class HealthCheckOutputSerializer(serializers.Serializer):
    """One part's health."""

    status = serializers.ChoiceField(choices=["ok", "down", "unknown"], help_text="ok, down or unknown.")
    detail = serializers.CharField(help_text="One line on the state.")
    critical = serializers.BooleanField(help_text="Whether a failure makes the endpoint answer 503.")
    latency_ms = serializers.FloatField(allow_null=True, help_text="Time the probe took, in milliseconds.")
    error = serializers.CharField(required=False, help_text="Exception text (authenticated callers only).")
    workers = HealthWorkerOutputSerializer(many=True, required=False,
                                           help_text="trading_node only: each trading worker that has a heartbeat.")


class HealthOutputSerializer(serializers.Serializer):
    """Health of the web process's dependencies."""

    status = serializers.ChoiceField(choices=["ok", "degraded", "down"],
                                     help_text="ok: all parts ok; degraded: a non-critical part is not ok; down: a "
                                               "critical part is not ok (HTTP 503).")
    ts = serializers.DateTimeField(help_text="Time of the checks (UTC).")
    checks = serializers.DictField(child=HealthCheckOutputSerializer(),
                                   help_text="database, broker, channel_layer, trading_node, venue_adapters (every "
                                             "enabled venue that cannot trade in this release, by name), "
                                             "stuck_orders (orders ROUTED, SUBMITTED without a venue answer or "
                                             "PENDING_CANCEL for more than ORDER_STUCK_AFTER_SECS: count, oldest "
                                             "age and action per status).")


class ErrorOutputSerializer(serializers.Serializer):
    """Every error body: ``error`` and ``detail``, and the keys its kind adds (:mod:`orders.api.errors`)."""

    error = serializers.CharField(help_text="Machine-readable code: invalid, not_found, idempotency_conflict, "
                                  "order_not_cancelable, strategy_disabled, strategy_forbidden, throttled …")
    detail = serializers.CharField(help_text="One sentence for people.")
    fields = serializers.DictField(required=False, help_text="Input errors: field → list of reasons "
                                   "(exec_algorithm_params: parameter → list of reasons); on idempotency_conflict "
                                   "the fields that differ from the stored order.")
    operation_id = serializers.CharField(required=False, help_text="idempotency_conflict (409): the operation_id "
                                         "already used.")
    order_id = serializers.UUIDField(required=False, help_text="idempotency_conflict (409): the order stored under "
                                     "that operation_id; order_not_cancelable (409): the order refused.")
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False, help_text=(
        "order_not_cancelable (409): the order's status, which refuses the cancel."))
    strategy_id = serializers.CharField(required=False, allow_blank=True, help_text=(
        "strategy_forbidden / permission_denied (403) and strategy_disabled (422): the strategy asked for (empty "
        "when a permission is missing whatever the strategy)."))
    retry_after_secs = serializers.IntegerField(required=False, min_value=0, help_text=(
        "throttled (429): whole seconds to wait before the token's next request (also the Retry-After header)."))
