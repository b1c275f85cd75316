"""A fill's identity becomes (venue, listing, venue trade id, side): a self-trade is two fills of one trade id.

Adds ``Fill.side`` (BUY or SELL: the side of the trade the fill is), fills it in for every stored fill
from its order's side (one UPDATE with a sub-select: PostgreSQL and SQLite; the buy-like sides
BUY, SUPPLY, STAKE, BACK are BUY, the sell-like SELL, BORROW, WITHDRAW, LAY are SELL, as
``orders.fills.trade_side`` maps them), then replaces the unique constraint on (venue, instrument_key,
venue trade id) with one on (venue, instrument_key, venue trade id, side) and allows only BUY and SELL
(``orders.models.Fill`` gives the venues' sources).

Forwards, every stored fill's order must have a known side: otherwise the migration stops naming the
fills, nothing changed. Backwards, the old constraint comes back only while no trade id of a listing is
stored for both sides; otherwise the migration stops naming them (such fills are the two sides of a
self-trade: undo nothing by deleting one).
"""

from django.db import migrations, models
from django.db.models import Case, Count, OuterRef, Subquery, Value, When

# Frozen here: a migration must not change with the code (odum_live.intent.BUY_LIKE_SIDES,
# positions.maths.SELL_LIKE_SIDES as of this migration).
_BUY_LIKE = ("BUY", "SUPPLY", "STAKE", "BACK")
_SELL_LIKE = ("SELL", "BORROW", "WITHDRAW", "LAY")


def _backfill_side(apps, schema_editor):
    Fill = apps.get_model("orders", "Fill")
    Order = apps.get_model("orders", "Order")
    trade_side = Case(When(side__in=_BUY_LIKE, then=Value("BUY")), When(side__in=_SELL_LIKE, then=Value("SELL")),
                      default=Value(""), output_field=models.CharField())
    Fill.objects.update(side=Subquery(
        Order.objects.filter(pk=OuterRef("order_id")).annotate(trade_side=trade_side).values("trade_side")[:1]))
    unknown = list(Fill.objects.filter(side="").order_by("id").values_list("id", flat=True)[:10])
    if unknown:
        raise RuntimeError(f"orders.Fill.side: fills {unknown} belong to orders whose side is neither buy-like "
                           f"{_BUY_LIKE} nor sell-like {_SELL_LIKE}; correct their orders' side, then migrate again")


def _refuse_trade_ids_on_both_sides(apps, schema_editor):
    Fill = apps.get_model("orders", "Fill")
    shared = list(Fill.objects.values("venue", "instrument_key", "venue_trade_id").annotate(n=Count("id"))
                  .filter(n__gt=1).order_by("venue", "instrument_key", "venue_trade_id")
                  .values_list("venue", "instrument_key", "venue_trade_id")[:10])
    if shared:
        raise RuntimeError(f"orders.Fill: trades {shared} are each stored for both sides (self-trades), "
                           "so (venue, instrument_key, venue_trade_id) cannot be made unique again")


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0002_fill_listing_identity"),
    ]

    operations = [
        migrations.AddField(
            model_name="fill",
            name="side",
            field=models.CharField(choices=[("BUY", "Buy"), ("SELL", "Sell")], default="",
                                   help_text="Side of the trade: BUY (buy-like order sides) or SELL (sell-like ones).",
                                   max_length=4),
            preserve_default=False,
        ),
        migrations.RunPython(_backfill_side, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name="fill",
            name="fill_unique_venue_listing_trade",
        ),
        # Backwards, before the old constraint is put back.
        migrations.RunPython(migrations.RunPython.noop, _refuse_trade_ids_on_both_sides, elidable=False),
        migrations.AddConstraint(
            model_name="fill",
            constraint=models.UniqueConstraint(fields=("venue", "instrument_key", "venue_trade_id", "side"),
                                               name="fill_unique_venue_listing_trade_side"),
        ),
        migrations.AddConstraint(
            model_name="fill",
            constraint=models.CheckConstraint(condition=models.Q(side__in=["BUY", "SELL"]),
                                              name="fill_side_buy_or_sell"),
        ),
        migrations.AlterField(
            model_name="fill",
            name="venue_trade_id",
            field=models.CharField(help_text="The venue's trade id: unique per listing and side.", max_length=128),
        ),
    ]
