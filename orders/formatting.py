"""Plain-text order views: the one format of ``manage.py orders`` and the Execute page's CLI view.

The command prints these strings; the pages show the same strings in a ``<pre>`` (the ticket's
result, its live status, the what-if result), so what a trader reads on the page is what an
operator reads in a terminal. Decimals are canonical strings (``0.05``, never ``0.050000``);
times are UTC ISO-8601 to the millisecond with ``Z``; prices in quote currency, quantities in base
units, costs in basis points (bps).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal

from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from orders.algorithms import format_decimal
from orders.selectors import order_reason

#: Columns of ``orders list`` (and their widths): the Orders page's columns.
LIST_COLUMNS = (("ORDER ID", 36), ("OPERATION ID", 20), ("INSTRUMENT", 32), ("SIDE", 4), ("QTY", 12),
                ("FILLED", 12), ("AVG PRICE", 14), ("STATUS", 16), ("VENUE", 16), ("CREATED", 24))


def fmt_decimal(value) -> str:
    """Return a decimal as its canonical string, ``-`` for None."""
    if value is None or value == "":
        return "-"
    return format_decimal(Decimal(str(value)))


def fmt_time(value: datetime | str | None) -> str:
    """Return a time as UTC ISO-8601 to the millisecond (``2025-01-01T12:00:00.123Z``), ``-`` for None."""
    if not value:
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def cli_command(body: Mapping) -> str:
    """Return the ``manage.py orders submit`` command equivalent to an order body.

    Parameters
    ----------
    body : Mapping
        The order API's JSON body (:meth:`orders.web.ticket.Ticket.body`): ``strategy_id``,
        ``instrument_key``, ``side``, ``order_type``, ``quantity``, ``price``, ``time_in_force``,
        ``expire_time``, ``exec_algorithm``, ``exec_algorithm_params``, ``operation_id``.

    Returns
    -------
    str
        One line, each value shell-quoted; absent fields are left out.
    """
    words = ["manage.py", "orders", "submit"]
    for option, name in (("--strategy", "strategy_id"), ("--instrument", "instrument_key"), ("--side", "side"),
                         ("--type", "order_type"), ("--qty", "quantity"), ("--price", "price"),
                         ("--tif", "time_in_force"), ("--expire-time", "expire_time"),
                         ("--algorithm", "exec_algorithm")):
        value = body.get(name)
        if value not in (None, ""):
            words += [option, str(value)]
    for name, value in (body.get("exec_algorithm_params") or {}).items():
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        words += ["--param", f"{name}={text}"]
    if body.get("operation_id"):
        words += ["--operation-id", str(body["operation_id"])]
    return " ".join(shlex.quote(word) for word in words)


def fmt_fees(totals: Iterable) -> str:
    """Return fee totals per currency (:class:`orders.fills.FeeTotal`) as one text, never one sum across
    currencies: ``0.4 USDT + 0.00001 BNB``, ``0.00001 BTC``; ``0`` without fees."""
    return " + ".join(f"{fmt_decimal(t.amount)} {t.currency}".rstrip() for t in totals) or "0"


def order_status_line(order) -> str:
    """Return one line on where ``order`` stands: status, filled / quantity, average price, fees, and the
    reason (:func:`orders.selectors.order_reason`: a denial's, a rejection's, a cancel's) or else the error.

    Fees are totalled per fee currency (:func:`fmt_fees`) from ``order.family_fills`` — set it with
    :func:`orders.selectors.order_with_family_fills` (or read the order with ``order_get_detail``);
    without it the line gives the stored ``Order.fees``, the plain sum of the fills' fees, as a bare number.
    """
    family = getattr(order, "family_fills", None)
    fees = fmt_decimal(order.fees) if family is None else fmt_fees(family.fee_totals)
    line = (f"{order.status} filled {fmt_decimal(order.filled_quantity)}/{fmt_decimal(order.quantity)}"
            f" avg {fmt_decimal(order.avg_fill_price)} fees {fees}")
    reason = order_reason(order=order)
    if reason:
        line += f" reason: {reason}"
    elif order.error_message:
        line += f" error: {order.error_message}"
    return line


def order_block(order, *, created: bool | None = None, with_status: bool = True) -> str:
    """Return the short view of one order (``orders submit`` / ``cancel`` output, the ticket's result).

    Parameters
    ----------
    order : Order
    created : bool | None
        From a submit: True for a new order, False for a replayed operation id (nothing re-sent).
    with_status : bool
        False leaves out the status line (:func:`order_status_line`), for a view that shows the live status
        beside the block (the Execute page's result): a status fixed at submission (ROUTED) would go stale there.
    """
    head = f"order {order.id}"
    if created is not None:
        head += " (new)" if created else " (operation id seen before: stored order, nothing re-sent)"
    algorithm = order.exec_algorithm
    if order.exec_algorithm_params:
        algorithm += " " + " ".join(f"{k}={_param(v)}" for k, v in order.exec_algorithm_params.items())
    price = f" @ {fmt_decimal(order.price)}" if order.price is not None else ""
    lines = [
        head,
        f"  operation id  {order.operation_id}    strategy {order.strategy_id}    by {order.created_by or '-'}",
        f"  order         {order.side} {fmt_decimal(order.quantity)} {order.instrument_key} {order.order_type}{price}"
        f" {order.time_in_force} {algorithm}",
        *([f"  status        {order_status_line(order)}"] if with_status else []),
        f"  venue         {order.venue or '-'} {order.routed_instrument_key or ''}".rstrip(),
        f"  ids           client {order.client_order_id}    venue {order.venue_order_id or '-'}",
        f"  created       {fmt_time(order.created_at)}",
    ]
    return "\n".join(lines)


def _param(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def risk_lines(risk_result: Mapping) -> list[str]:
    """Return the pre-trade risk result, one line per check: PASS/FAIL, check, observed vs limit, scope."""
    if not risk_result:
        return ["risk          (not evaluated)"]
    verdict = "passed" if risk_result.get("passed") else f"FAILED: {risk_result.get('reason') or ''}".rstrip()
    lines = [f"risk          {verdict}"]
    for check in risk_result.get("checks", []):
        mark = "PASS" if check.get("passed") else "FAIL"
        figures = f"observed {fmt_observed(check)} limit {fmt_figure(check.get('limit'))}"
        scope = f" [{check['scope']}]" if check.get("scope") else ""
        detail = f" {check['detail']}" if check.get("detail") else ""
        lines.append(f"  {mark} {check.get('check', '?'):<22} {figures}{scope}{detail}")
    return lines


#: Units of the checks whose observed figure always has the same one (risk.engine), for results stored
#: before each check recorded its ``unit``.
_FIXED_UNITS = {"price_collar": "bps", "velocity": "orders", "repeated_order": "orders"}


def fmt_observed(check: Mapping) -> str:
    """Return a risk check's observed figure with its unit (``12.5 bps``, ``0.05 BTC``, ``1200 USDT``).

    ``check`` is one entry of ``Order.risk_result["checks"]`` (:meth:`risk.engine.CheckResult.to_json`): its
    ``unit``, or for a result stored without one the unit its check always has (``price_collar``: bps).
    ``-`` when nothing was observed; a word (``HALTED``) as it is.
    """
    figure = fmt_figure(check.get("observed"))
    if figure == "-":
        return figure
    unit = check["unit"] if "unit" in check else _FIXED_UNITS.get(check.get("check"), "")
    return f"{figure} {unit}".rstrip() if unit else figure


def fmt_figure(value) -> str:
    """Return a recorded figure (risk observed / limit, routing bps and prices): a decimal as its canonical
    string (``10.000000`` → ``10``), other text as it is, ``-`` for None or empty."""
    if value is None or value == "":
        return "-"
    try:
        return fmt_decimal(value)
    except ArithmeticError:
        return str(value)
    except (TypeError, ValueError):
        return str(value)


def fmt_candidate_price(candidate: Mapping) -> str:
    """Return a routing candidate's expected price with its listing's quote currency (``39440.35 USDT``).

    The currency is the quote of the candidate's ``instrument_key`` (candidates may be listings in
    different quote currencies: BTC-USDT, BTC-USDC, BTC-USD@INV); the bare figure when the key names
    none (``-`` when no price).
    """
    price = candidate.get("expected_price")
    figure = fmt_figure(price)
    if price in (None, ""):
        return figure
    try:
        quote = parse_instrument_key(candidate.get("instrument_key") or "").quote
    except InstrumentKeyError:
        quote = None
    return f"{figure} {quote}" if quote else figure


def routing_lines(decision: Mapping) -> list[str]:
    """Return the routing decision: the chosen venue and reason, then every candidate with its cost (bps)."""
    if not decision:
        return ["routing       (not routed)"]
    chosen = decision.get("venue") or "none"
    lines = [f"routing       {chosen} {decision.get('instrument_key') or ''} — {decision.get('reason') or ''}".rstrip()]
    for c in decision.get("candidates", []):
        mark = "*" if c.get("venue") == decision.get("venue") and c.get("eligible") else ("-" if c.get("eligible") else "x")
        lines.append(
            f"  {mark} {c.get('venue', '?'):<16} total {fmt_figure(c.get('total_bps'))} bps"
            f" = fee {fmt_figure(c.get('fee_bps'))}"
            f" + slippage {fmt_figure(c.get('slippage_bps'))} + latency {fmt_figure(c.get('latency_bps'))}"
            f"  expected price {fmt_candidate_price(c)}"
            + (f"  ({c['reason']})" if c.get("reason") else "")
        )
    return lines


def what_if_block(result) -> str:
    """Return a what-if result (:class:`orders.services.RiskCheckResult`): verdict, checks, routing."""
    verdict = f"what-if: would be {result.status}"
    if result.rejection_reason:
        verdict += f" — {result.rejection_reason}"
    return "\n".join([verdict, *risk_lines(result.risk_result), *routing_lines(result.routing_decision)])


def order_table(orders: Iterable) -> str:
    """Return orders as a fixed-width table (``orders list``), the Orders page's columns."""
    def row(cells):
        return "  ".join(str(cell)[:width].ljust(width) for cell, (_, width) in zip(cells, LIST_COLUMNS)).rstrip()

    lines = [row(name for name, _ in LIST_COLUMNS)]
    for o in orders:
        lines.append(row([o.id, o.operation_id, o.instrument_key, o.side, fmt_decimal(o.quantity),
                          fmt_decimal(o.filled_quantity), fmt_decimal(o.avg_fill_price), o.status, o.venue or "-",
                          fmt_time(o.created_at)]))
    return "\n".join(lines)


def order_detail_block(order) -> str:
    """Return the full view of one order (``orders show``): the short view, timeline, fills (an algorithm
    parent's: its family's, each naming the slice it was booked on), children, risk checks and routing
    candidates. ``order`` comes from :func:`orders.selectors.order_get_detail`."""
    lines = [order_block(order), "timeline"]
    for event in order.events.all():
        by = f" by {event.actor}" if event.actor else ""
        # An entry standing for repeats (a cancel re-sent and received again: orders.services.dispatch.entry_repeat)
        times = f" (x{event.payload['count']} since {event.payload.get('first_at', '?')})" \
            if int((event.payload or {}).get("count", 1)) > 1 else ""
        lines.append(f"  {fmt_time(event.ts)}  {event.type:<17} {event.status_before or '-'} -> "
                     f"{event.status_after or '-'}{by}{times}")
    # The family's fills, as the order's page lists them: each naming its order when slices filled some
    fills = order.family_fills.fills
    children = list(order.children.all())
    lines.append(f"fills         {len(fills)}" + (" of this order and its slices" if children else ""))
    for f in fills:
        booked_on = ("  this order" if f.order_id == order.id else f"  slice {f.order_id}") if children else ""
        lines.append(f"  {fmt_time(f.ts_event)}  {fmt_decimal(f.quantity)} @ {fmt_decimal(f.price)}"
                     f"  fee {fmt_decimal(f.fee)} {f.fee_currency}  {f.liquidity}  {f.venue}:{f.venue_trade_id}"
                     f"{booked_on}")
    if children:
        lines.append(f"child orders  {len(children)}  filled {fmt_decimal(order.filled_quantity)}"
                     f"/{fmt_decimal(order.quantity)}")
        for c in children:
            lines.append(f"  {c.id}  {c.status:<16} {fmt_decimal(c.filled_quantity)}/{fmt_decimal(c.quantity)}"
                         f"  avg {fmt_decimal(c.avg_fill_price)}")
    lines += risk_lines(order.risk_result)
    lines += routing_lines(order.routing_decision)
    return "\n".join(lines)
