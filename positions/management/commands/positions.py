"""``manage.py positions``: the positions page as a table (same selector, same figures and totals)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders.models import Strategy
from positions.selectors import PositionBook, position_book
from positions.templatetags.positions_ui import fee_amounts, money, plain_decimal

COLUMNS = ("instrument / listing", "quantity", "avg entry", "mark", "unrealized PnL", "realized PnL", "fees",
           "notional", "strategies")


def format_book(book: PositionBook) -> str:
    """Return the book as a fixed-width table: one line per instrument, one per venue listing, totals.

    Quantities signed: on the instrument line in base units of the underlying summed over venues
    (named there; ``positions.selectors.InstrumentPosition.quantity``), on a listing line in the
    listing's own unit (contracts for derivatives). Prices and notionals in quote currency, PnL in
    the PnL currency (named on the instrument line and the totals; an instrument whose listings
    settle in different currencies has no PnL total, and a note says so); the formats of the
    positions page. An instrument whose quantity cannot be summed in base units shows ``—`` and a note
    names the listing and why (``positions.selectors.InstrumentPosition.quantity_problem``). Fees paid in
    a third currency (``other_fees``, e.g. BNB: in no PnL) follow the fees as ``+ 0.01 BNB``, and a last
    line totals them per currency.
    """
    rows: list[tuple[str, ...]] = []
    for agg in book.instruments:
        pnl, quote = agg.pnl_currency, agg.notional_currency
        quantity = f"{plain_decimal(agg.quantity)} {agg.base_unit}" if agg.quantity is not None else plain_decimal(None)
        rows.append((agg.instrument_key, quantity, plain_decimal(agg.avg_entry_price), "",
                     f"{money(agg.unrealized_pnl, pnl)} {pnl}".rstrip(),
                     f"{money(agg.realized_pnl, pnl)} {pnl}".rstrip(),
                     _fees(money(agg.fees, pnl), agg.other_fees), f"{money(agg.notional, quote)} {quote}", ""))
        for vp in agg.venues:
            rows.append((f"  {vp.instrument_key}", plain_decimal(vp.quantity), plain_decimal(vp.avg_entry_price),
                         plain_decimal(vp.mark_price), money(vp.unrealized_pnl, vp.pnl_currency),
                         money(vp.realized_pnl, vp.pnl_currency),
                         _fees(money(vp.fees, vp.pnl_currency), vp.other_fees),
                         money(vp.notional, quote), ",".join(vp.strategies)))
    for total in book.totals:
        ccy = total.currency
        rows.append((f"TOTAL {ccy}", "", "", "", money(total.unrealized_pnl, ccy), money(total.realized_pnl, ccy),
                     money(total.fees, ccy), money(total.notional, ccy), f"equity {money(total.equity, ccy)}"))
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    left = {0, 8}

    def line(cells) -> str:
        return "  ".join(cell.ljust(w) if i in left else cell.rjust(w) for i, (cell, w) in
                         enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [line(COLUMNS), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    if not book.instruments:
        out.append("no positions")
    for agg in book.instruments:
        if agg.quantity_problem:
            out.append(f"quantity unknown for {agg.instrument_key}: {agg.quantity_problem}")
        if not agg.pnl_currency:
            out.append(f"no PnL total for {agg.instrument_key}: its listings settle in "
                       f"{' and '.join(agg.pnl_currencies)}, and amounts of different currencies are not added")
    if book.unpriced:
        out.append(f"notional unknown (no mark or entry price, or no listing): {', '.join(book.unpriced)}")
    if book.other_fees:
        out.append(f"fees in other currencies, in no PnL (no rate converts them): {fee_amounts(book.other_fees)}")
    return "\n".join(out)


def _fees(fees: str, other_fees: dict) -> str:
    # The fees in the PnL currency, then those in a third currency (never added to them).
    return f"{fees} + {fee_amounts(other_fees)}" if other_fees else fees


class Command(BaseCommand):
    help = ("Print positions aggregated by instrument with the per-venue breakdown and totals per currency "
            "(the figures of /live/positions).")

    def add_arguments(self, parser):
        parser.add_argument("--strategy", help="Only this strategy's positions.")
        parser.add_argument("--venue", help="Only listings on this venue code.")

    def handle(self, *args, strategy=None, venue=None, **options):
        if strategy and not Strategy.objects.filter(pk=strategy).exists():
            raise CommandError(f"--strategy: no strategy {strategy!r}")
        self.stdout.write(format_book(position_book(strategy_ids=None, strategy_id=strategy, venue=venue)))
