"""Server-side SVG geometry for the equity / PnL curve (no JavaScript, no CDN).

:func:`equity_chart` turns :func:`positions.selectors.equity_curve` series into coordinates and
axis labels; ``templates/positions/_chart.html`` draws them as an inline ``<svg>``. The
maths is plain linear scaling; Decimal figures become floats only here, for drawing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from positions.selectors import EquityPoint
from positions.templatetags.positions_ui import currency_places


@dataclass(frozen=True)
class ChartLine:
    """One polyline: ``points`` is SVG ``x,y x,y …`` text; ``last`` the latest value as text."""

    label: str
    css_class: str
    points: str
    last: str


@dataclass(frozen=True)
class LineChart:
    """An SVG chart of one currency's series, in a ``width`` × ``height`` viewBox (user units).

    ``as_of`` is the time of the series' last point (a snapshot, UTC): the lines' ``last`` values are as of
    then, not now — the curve is drawn flat from there to ``now``, while the positions table beside it shows
    the latest marks. The legend says so.
    """

    currency: str
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    lines: list[ChartLine] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)
    zero_y: float | None = None
    as_of: datetime | None = None


def _fmt(value: float, places: int = 2) -> str:
    return f"{value:,.{places}f}"


def equity_chart(*, currency: str, points: list[EquityPoint], width: int = 1200, height: int = 240,
                 now: datetime | None = None) -> LineChart:
    """Lay out the equity (realized + unrealized) and realized PnL lines of one currency.

    Parameters
    ----------
    currency : str
        PnL currency of the series (shown in the labels).
    points : list[EquityPoint]
        By time; at least one (a single point is drawn as a flat line up to ``now``).
    width, height : int
        viewBox size, SVG user units (the page scales it to its width).
    now : datetime | None
        Right edge of the time axis when later than the last point (the curve holds its last
        value until now); default: the last point's time.

    Returns
    -------
    LineChart
        With ``as_of`` the last point's time (before the flat extension to ``now``).

    Raises
    ------
    ValueError
        ``points`` is empty.
    """
    if not points:
        raise ValueError("points: at least one point is needed to draw a chart")
    as_of = points[-1].ts
    if now is not None and now > points[-1].ts:
        points = [*points, EquityPoint(ts=now, realized_pnl=points[-1].realized_pnl,
                                       unrealized_pnl=points[-1].unrealized_pnl)]
    left, right, top, bottom = 70, width - 10, 10, height - 24
    places = currency_places(currency)  # a BTC curve to the cent would read 0.00 throughout
    t0, t1 = points[0].ts.timestamp(), points[-1].ts.timestamp()
    span_t = (t1 - t0) or 1.0
    values = [float(v) for p in points for v in (p.equity, p.realized_pnl)] + [0.0]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad

    def x(ts: datetime) -> float:
        return round(left + (ts.timestamp() - t0) / span_t * (right - left), 1)

    def y(value: float | Decimal) -> float:
        return round(bottom - (float(value) - lo) / (hi - lo) * (bottom - top), 1)

    def line(label: str, css: str, attr: str) -> ChartLine:
        coords = " ".join(f"{x(p.ts)},{y(getattr(p, attr))}" for p in points)
        return ChartLine(label=f"{label} ({currency})", css_class=css, points=coords,
                         last=_fmt(float(getattr(points[-1], attr)), places))

    y_ticks = [(y(lo + (hi - lo) * i / 4), _fmt(lo + (hi - lo) * i / 4, places)) for i in range(5)]
    # Time labels at both ends and the middle of the axis (x, text, SVG text-anchor).
    middle = datetime.fromtimestamp((t0 + t1) / 2, tz=points[0].ts.tzinfo)
    x_ticks = [(x(ts), f"{ts:%m-%d %H:%M:%S}", anchor)
               for ts, anchor in ((points[0].ts, "start"), (middle, "middle"), (points[-1].ts, "end"))]
    return LineChart(currency=currency, width=width, height=height, plot_left=left, plot_right=right,
                     plot_top=top, plot_bottom=bottom,
                     lines=[line("equity", "equity", "equity"), line("realized", "realized", "realized_pnl")],
                     y_ticks=y_ticks, x_ticks=x_ticks, zero_y=y(0.0), as_of=as_of)
