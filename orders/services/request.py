"""The client's order request: validated, normalised, fingerprinted.

Every entry point (REST API, order ticket, CLI) builds an :class:`OrderRequest` with
:func:`order_request_build`, so the business rules on an order message live in one place. The
caller supplies Python types (``Decimal``, aware ``datetime``, ``dict``); the REST serializer turns
JSON into those types and leaves the cross-field rules to this module.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from typing import Any

from django.utils import timezone as dj_timezone

from odum_live.fields import MAX_DIGITS, NUMERIC_BOUND, DecimalInputError, decimal_input
from odum_live.instruments import InstrumentKey, InstrumentKeyError
from odum_live.intent import OrderIntent
from orders.algorithms import AlgorithmParamsError, format_decimal, slice_weights, validate_exec_algorithm_params
from orders.models import Order

#: Sides each operation accepts (None: any side except the betting ones).
OPERATION_SIDES: dict[str, frozenset[str] | None] = {
    "trade": frozenset({"BUY", "SELL"}),
    "swap": frozenset({"BUY", "SELL"}),
    "bet": frozenset({"BACK", "LAY"}),
    "supply": frozenset({"SUPPLY"}),
    "borrow": frozenset({"BORROW"}),
    "stake": frozenset({"STAKE"}),
    "withdraw": frozenset({"WITHDRAW"}),
    "transfer": None,
}
#: Largest accepted ``metadata`` (and ``expected_deltas``) object, in bytes of compact JSON: it is stored
#: on every order row.
MAX_METADATA_BYTES = 16 * 1024
OPERATION_ID_MAX_LENGTH = 128


class OrderRequestInvalid(ValueError):
    """The request breaks a rule of the order message.

    Attributes
    ----------
    errors : dict[str, list[str] | dict]
        Messages keyed by field name (``exec_algorithm_params`` holds a dict keyed by parameter).
    """

    def __init__(self, errors: dict[str, Any]):
        self.errors = errors
        super().__init__(json.dumps(errors, sort_keys=True))


class OrderRequestExpired(OrderRequestInvalid):
    """The request's only fault is a GTD ``expire_time`` that has passed.

    A new order is refused for it, but a replay of a stored order is not: the client's retry of an
    order accepted while its ``expire_time`` was still ahead gets the stored order
    (:func:`orders.services.submit.order_submit` decides, looking the operation_id up only then).

    Attributes
    ----------
    errors : dict[str, list[str]]
        ``{"expire_time": [reason]}``.
    request : OrderRequest
        The request, valid in every other respect.
    """

    def __init__(self, errors: dict[str, Any], *, request: OrderRequest):
        self.request = request
        super().__init__(errors)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated order request: the client-supplied fields of the seeds' order message.

    Quantities are in base units (contracts for derivatives), prices in quote currency, gas in gas
    units and gwei, ``max_slippage`` a fraction (0.005 = 50 bps), ``odds`` decimal (European)
    odds, ``expected_deltas`` a map of asset → signed decimal amount. Optional text fields are
    ``""`` when absent, optional numbers ``None``.
    """

    operation_id: str
    instrument_key: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str = "GTC"
    expire_time: datetime | None = None
    exec_algorithm: str = "NORMAL"
    exec_algorithm_params: dict = field(default_factory=dict)
    operation: str = "trade"
    tx_hash: str = ""
    gas_used: Decimal | None = None
    gas_price_gwei: Decimal | None = None
    contract_address: str = ""
    source_token: str = ""
    target_token: str = ""
    max_slippage: Decimal | None = None
    atomic_group_id: str = ""
    sequence_in_group: int | None = None
    odds: Decimal | None = None
    selection: str = ""
    potential_payout: Decimal | None = None
    source_venue: str = ""
    target_venue: str = ""
    expected_deltas: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    #: The parsed ``instrument_key`` (derived; not part of the fingerprint).
    instrument: InstrumentKey | None = field(default=None, compare=False, repr=False)

    def fingerprint(self) -> str:
        """Return the sha256 (hex) of the canonical JSON of the request body, minus ``operation_id``.

        Canonical: keys sorted, decimals in plain normalised form (``"1.50"`` ≡ ``"1.5"`` ≡ ``1.5``
        spelled as a string), equal JSON numbers alike in free JSON such as ``metadata`` (``1.0`` ≡
        ``1`` ≡ ``1e0``; strings stay strings, ``"1"`` is not ``1``), times in UTC ISO-8601,
        defaults applied — so two bodies that mean the same order have the same fingerprint, and
        any change of meaning changes it.

        A body without an integral JSON float (``1.0``, ``1e3``) has the fingerprint it always had;
        :meth:`legacy_fingerprint` gives the one such a body had before.
        """
        return self._fingerprint(legacy=False)

    def legacy_fingerprint(self) -> str:
        """Return the fingerprint as it was before integral floats were taken as integers.

        Orders stored before then carry it: ``{"size": 1.0}`` was not ``{"size": 1}``. Compare
        with it only when :meth:`fingerprint` differs (a replay of such an order), never per order.
        """
        return self._fingerprint(legacy=True)

    def _fingerprint(self, *, legacy: bool) -> str:
        payload = {}
        for f in fields(self):
            if f.name in _NOT_FINGERPRINTED:
                continue
            payload[f.name] = _canonical(getattr(self, f.name), legacy=legacy)
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, stored) -> dict[str, list[str]]:
        """Return the fields whose meaning differs from ``stored``'s, each with a reason.

        Parameters
        ----------
        stored : orders.models.Order
            The order recorded under this request's ``operation_id`` (its columns carry the same
            names as this request's fields).

        Returns
        -------
        dict[str, list[str]]
            ``{field: ["differs from the stored order's: <stored value>"]}`` for each field whose
            canonical value (as in :meth:`fingerprint`) differs, sorted by name; a JSON object
            field's reason names no value. ``{}`` when none can be told apart.
        """
        out = {}
        for f in fields(self):
            if f.name in _NOT_FINGERPRINTED:
                continue
            mine, theirs = _canonical(getattr(self, f.name)), _canonical(getattr(stored, f.name))
            if mine != theirs:
                shown = "" if isinstance(theirs, dict) else f": {'null' if theirs is None else theirs}"
                out[f.name] = [f"differs from the stored order's{shown}"]
        return dict(sorted(out.items()))

    def expiry_errors(self) -> dict[str, list[str]]:
        """Return ``{"expire_time": [reason]}`` when the GTD ``expire_time`` is not in the future, else ``{}``.

        The one time-dependent rule of the order message: a new order must still be able to live.
        """
        if self.expire_time is None or self.expire_time > dj_timezone.now():
            return {}
        return {"expire_time": [_expired(self.expire_time)]}

    def to_intent(self, *, strategy_id: str) -> OrderIntent:
        """Return the :class:`OrderIntent` pre-trade risk and the router see."""
        return OrderIntent(
            strategy_id=strategy_id,
            instrument=self.instrument or InstrumentKey.parse(self.instrument_key),
            side=self.side,
            order_type=self.order_type,
            quantity=self.quantity,
            price=self.price,
            time_in_force=self.time_in_force,
            exec_algorithm=self.exec_algorithm,
            operation=self.operation,
            display_qty=self.display_qty,
            slice_weights=slice_weights(algorithm=self.exec_algorithm, params=self.exec_algorithm_params),
        )

    @property
    def display_qty(self) -> Decimal | None:
        """An ICEBERG's ``display_qty`` (base units) from the validated params; None for other algorithms."""
        if self.exec_algorithm != "ICEBERG":
            return None
        return Decimal(self.exec_algorithm_params["display_qty"])

    def model_fields(self) -> dict[str, Any]:
        """Return the request as ``Order`` column values (everything except the derived key)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "instrument"}


#: Fields outside the request fingerprint: the idempotency key itself and the derived parsed key.
_NOT_FINGERPRINTED = ("operation_id", "instrument")


def _canonical(value: Any, *, legacy: bool = False) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, float) and not legacy:
        return _json_number(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v, legacy=legacy) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, legacy=legacy) for v in value]
    return value


def _json_number(value: float) -> int | float:
    # An integral float becomes the int it equals (1.0, 1e3, -0.0 → 1, 1000, 0), as a JSON integer
    # spells it: ints keep their fingerprint. Others stay floats, whose repr is already canonical.
    if not math.isfinite(value):
        return value
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else value


def _add(errors: dict, name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


def _choice(errors: dict, name: str, value: Any, choices) -> None:
    if value not in choices:
        _add(errors, name, f"{value!r} is not one of {', '.join(choices)}")


def order_request_build(**data: Any) -> OrderRequest:
    """Validate an order message and return it as an :class:`OrderRequest`.

    Parameters
    ----------
    **data
        The fields of :class:`OrderRequest` as Python values (``Decimal`` numbers, aware
        ``datetime``, ``dict`` JSON objects); omitted optional fields take their defaults.

    Returns
    -------
    OrderRequest
        With ``exec_algorithm_params`` and ``expected_deltas`` normalised and ``instrument`` parsed.

    Raises
    ------
    OrderRequestInvalid
        Naming every offending field with the reason. Rules: instrument key grammar (DESIGN.md,
        "Canonical instrument IDs"); quantity > 0; LIMIT needs a price > 0 and MARKET takes none;
        a LIMIT order's quantity × price is below 10**18 (:data:`odum_live.fields.NUMERIC_BOUND`:
        the open-order totals store it as NUMERIC(36,18)); GTD needs a future ``expire_time`` and
        other time-in-force values take none; MARKET is not GTD (NautilusTrader ``MarketOrder``
        refuses GTD); algorithm params per :mod:`orders.algorithms`; side per operation
        (:data:`OPERATION_SIDES`); bets need odds > 1; transfers need distinct ``source_venue`` and
        ``target_venue`` (and only transfers take them); ``sequence_in_group`` needs
        ``atomic_group_id``; ``max_slippage`` in [0, 1]; ``metadata`` and ``expected_deltas`` at most
        :data:`MAX_METADATA_BYTES` of compact JSON each; ``expected_deltas`` maps each asset to a decimal
        read as every decimal of the message is (:func:`odum_live.fields.decimal_input`; the reason follows
        the asset: ``"BTC: must not have leading or trailing whitespace"``).
    OrderRequestExpired
        (An ``OrderRequestInvalid``.) The only fault is an ``expire_time`` already passed; it
        carries the otherwise valid request, for :func:`orders.services.submit.order_submit` to
        answer a replay of a stored order with.
    """
    unknown = set(data) - {f.name for f in fields(OrderRequest)} - {"instrument"}
    if unknown:
        raise OrderRequestInvalid({name: ["is not a field of an order request"] for name in sorted(unknown)})
    errors: dict[str, Any] = {}
    for name in _REQUIRED:
        if data.get(name) is None or data.get(name) == "":
            _add(errors, name, "is required")
    if errors:
        raise OrderRequestInvalid(errors)

    values = _defaults()
    for name, value in data.items():
        if name == "instrument":
            continue
        if value is None and name not in _NULLABLE:
            continue  # null for a text / JSON field means "absent": the default applies
        values[name] = value

    operation_id = values["operation_id"]
    if not isinstance(operation_id, str) or len(operation_id) > OPERATION_ID_MAX_LENGTH:
        _add(errors, "operation_id", f"must be a string of at most {OPERATION_ID_MAX_LENGTH} characters")
    elif not operation_id.isprintable() or any(c.isspace() for c in operation_id):
        _add(errors, "operation_id", "must be printable characters without whitespace")

    instrument = None
    try:
        instrument = InstrumentKey.parse(values["instrument_key"])
    except InstrumentKeyError as exc:
        _add(errors, "instrument_key", str(exc))

    _choice(errors, "side", values["side"], Order.Side.values)
    _choice(errors, "order_type", values["order_type"], Order.OrderType.values)
    _choice(errors, "time_in_force", values["time_in_force"], Order.TimeInForce.values)
    _choice(errors, "exec_algorithm", values["exec_algorithm"], Order.ExecAlgorithm.values)
    _choice(errors, "operation", values["operation"], Order.Operation.values)

    quantity = values["quantity"]
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0:
        _add(errors, "quantity", f"must be a decimal greater than zero (base units), got {_show(quantity)}")
        quantity = None

    order_type, price = values["order_type"], values["price"]
    if order_type == "LIMIT":
        if price is None:
            _add(errors, "price", "is required for a LIMIT order (quote currency)")
        elif not price.is_finite() or price <= 0:
            _add(errors, "price", f"must be greater than zero (quote currency), got {_show(price)}")
        elif quantity is not None and _product(quantity, price) >= NUMERIC_BOUND:
            # The open-order totals store Σ quantity × limit price (risk.models.OpenOrderExposure.priced_value).
            _add(errors, "price", f"quantity × price must be below {_show(NUMERIC_BOUND)} (quote currency), got "
                                  f"{_show(_product(quantity, price))}: the order's value is stored as NUMERIC(36,18), "
                                  "at most 18 integer digits")
    elif order_type == "MARKET" and price is not None:
        _add(errors, "price", "must be omitted for a MARKET order (it executes at the market)")

    tif, expire_time = values["time_in_force"], values["expire_time"]
    expired = False
    if tif == "GTD":
        if expire_time is None:
            _add(errors, "expire_time", "is required when time_in_force is GTD")
        elif expire_time.tzinfo is None:
            _add(errors, "expire_time", "must carry a UTC offset (ISO-8601, e.g. 2030-01-01T00:00:00Z)")
        elif expire_time <= dj_timezone.now():
            expired = True  # reported last: a replay of a stored order may still be answered
        if order_type == "MARKET":
            _add(errors, "time_in_force", "GTD is not allowed for MARKET orders (use GTC, IOC or FOK)")
    elif expire_time is not None:
        _add(errors, "expire_time", f"is only allowed when time_in_force is GTD, not {tif}")

    if values["exec_algorithm"] in Order.ExecAlgorithm.values:
        try:
            values["exec_algorithm_params"] = validate_exec_algorithm_params(
                algorithm=values["exec_algorithm"],
                params=values["exec_algorithm_params"],
                quantity=quantity,
                order_type=order_type,
                time_in_force=tif,
            )
        except AlgorithmParamsError as exc:
            for name, messages in exc.errors.items():
                if name in ("order_type", "time_in_force", "exec_algorithm", "exec_algorithm_params"):
                    errors.setdefault(name, []).extend(messages)
                else:
                    errors.setdefault("exec_algorithm_params", {}).setdefault(name, []).extend(messages)

    operation, side = values["operation"], values["side"]
    allowed_sides = OPERATION_SIDES.get(operation, None)
    if operation in OPERATION_SIDES and side in Order.Side.values:
        if allowed_sides is None and side in ("BACK", "LAY"):
            _add(errors, "side", f"{side} is only for operation 'bet'")
        elif allowed_sides is not None and side not in allowed_sides:
            _add(errors, "side", f"operation '{operation}' takes side {' or '.join(sorted(allowed_sides))}, not {side}")

    if operation == "bet":
        if values["odds"] is None:
            _add(errors, "odds", "is required for operation 'bet' (decimal odds)")
    else:
        for name in ("odds", "potential_payout"):
            if values[name] is not None:
                _add(errors, name, "is only allowed for operation 'bet'")
        if values["selection"]:
            _add(errors, "selection", "is only allowed for operation 'bet'")
    if values["odds"] is not None and values["odds"] <= 1:
        _add(errors, "odds", f"must be decimal odds greater than 1, got {_show(values['odds'])}")
    if values["potential_payout"] is not None and values["potential_payout"] < 0:
        _add(errors, "potential_payout", "must not be negative")

    if operation == "transfer":
        for name in ("source_venue", "target_venue"):
            if not values[name]:
                _add(errors, name, "is required for operation 'transfer'")
        if values["source_venue"] and values["source_venue"] == values["target_venue"]:
            _add(errors, "target_venue", "must differ from source_venue")
    else:
        for name in ("source_venue", "target_venue"):
            if values[name]:
                _add(errors, name, "is only allowed for operation 'transfer'")

    for name in ("gas_used", "gas_price_gwei"):
        if values[name] is not None and values[name] < 0:
            _add(errors, name, "must not be negative")
    slippage = values["max_slippage"]
    if slippage is not None and not (0 <= slippage <= 1):
        _add(errors, "max_slippage", f"must be a fraction in [0, 1] (0.005 = 50 bps), got {_show(slippage)}")
    if values["sequence_in_group"] is not None:
        if not values["atomic_group_id"]:
            _add(errors, "sequence_in_group", "needs atomic_group_id")
        if values["sequence_in_group"] < 0:
            _add(errors, "sequence_in_group", "must not be negative")

    values["expected_deltas"] = _expected_deltas(values["expected_deltas"], errors)
    _json_size(errors, "expected_deltas", values["expected_deltas"])
    metadata = values["metadata"]
    if not isinstance(metadata, dict):
        _add(errors, "metadata", "must be a JSON object")
    else:
        _json_size(errors, "metadata", metadata)

    if errors:
        if expired:
            _add(errors, "expire_time", _expired(expire_time))
        raise OrderRequestInvalid(errors)
    request = OrderRequest(instrument=instrument, **values)
    if expired:
        raise OrderRequestExpired({"expire_time": [_expired(expire_time)]}, request=request)
    return request


def _expired(expire_time: datetime) -> str:
    return f"must be in the future, got {expire_time.isoformat()}"


def _json_size(errors: dict, name: str, value: dict) -> None:
    if len(json.dumps(value, separators=(",", ":"), default=str)) > MAX_METADATA_BYTES:
        _add(errors, name, f"must be at most {MAX_METADATA_BYTES} bytes of JSON")


def _expected_deltas(value: Any, errors: dict) -> dict:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        _add(errors, "expected_deltas", "must be a JSON object of asset → signed decimal string")
        return {}
    out = {}
    for asset, amount in value.items():
        try:
            out[str(asset)] = format_decimal(decimal_input(amount))
        except DecimalInputError as exc:
            _add(errors, "expected_deltas", f"{asset}: {exc.reason}")
    return out


def _product(a: Decimal, b: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 2 * MAX_DIGITS + 2  # exact for two NUMERIC(36,18) operands: no rounding up to the bound
        return a * b


def _show(value: Any) -> str:
    return format_decimal(value) if isinstance(value, Decimal) and value.is_finite() else repr(value)


def _defaults() -> dict[str, Any]:
    out = {}
    for f in fields(OrderRequest):
        if f.name == "instrument" or f.name in _REQUIRED:
            continue
        out[f.name] = f.default_factory() if f.default is MISSING else f.default
    return out


_REQUIRED = ("operation_id", "instrument_key", "side", "order_type", "quantity")
_NULLABLE = frozenset(
    {"price", "expire_time", "gas_used", "gas_price_gwei", "max_slippage", "sequence_in_group", "odds",
     "potential_payout"}
)
