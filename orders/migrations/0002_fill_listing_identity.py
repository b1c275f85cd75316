"""A fill's identity becomes (venue, listing, venue trade id): Binance and OKX number trades per symbol.

Adds ``Fill.instrument_key`` (the listing the fill was traded on), fills it in for every stored fill
from its order's ``routed_instrument_key`` (one UPDATE with a sub-select: PostgreSQL and SQLite),
then replaces the unique constraint on (venue, venue trade id) with one on (venue, instrument_key,
venue trade id) and requires the key (``orders.models.Fill`` gives the venues' sources).

Forwards, every stored fill must have a routed order (a fill never exists without one): a fill whose
order has no ``routed_instrument_key`` stops the migration with its ids, nothing changed. Backwards,
the old constraint comes back only while no trade id is shared by two listings of a venue; otherwise
the migration stops naming them (such fills are two real executions: undo nothing by deleting one).
"""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery


def _backfill_instrument_key(apps, schema_editor):
    Fill = apps.get_model("orders", "Fill")
    Order = apps.get_model("orders", "Order")
    Fill.objects.update(instrument_key=Subquery(
        Order.objects.filter(pk=OuterRef("order_id")).values("routed_instrument_key")[:1]))
    missing = list(Fill.objects.filter(instrument_key="").order_by("id").values_list("id", flat=True)[:10])
    if missing:
        raise RuntimeError(f"orders.Fill.instrument_key: fills {missing} belong to orders without a "
                           "routed_instrument_key; set the listing of their orders, then migrate again")


def _refuse_trade_ids_shared_by_listings(apps, schema_editor):
    Fill = apps.get_model("orders", "Fill")
    shared = list(Fill.objects.values("venue", "venue_trade_id").annotate(n=Count("id")).filter(n__gt=1)
                  .order_by("venue", "venue_trade_id").values_list("venue", "venue_trade_id")[:10])
    if shared:
        raise RuntimeError(f"orders.Fill: venue trade ids {shared} are each stored on more than one listing, "
                           "so (venue, venue_trade_id) cannot be made unique again")


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="fill",
            name="instrument_key",
            field=models.CharField(default="", help_text="Listing the fill was traded on (canonical key).",
                                   max_length=128),
            preserve_default=False,
        ),
        migrations.RunPython(_backfill_instrument_key, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name="fill",
            name="fill_unique_venue_trade",
        ),
        # Backwards, before the old constraint is put back.
        migrations.RunPython(migrations.RunPython.noop, _refuse_trade_ids_shared_by_listings, elidable=False),
        migrations.AddConstraint(
            model_name="fill",
            constraint=models.UniqueConstraint(fields=("venue", "instrument_key", "venue_trade_id"),
                                               name="fill_unique_venue_listing_trade"),
        ),
        migrations.AddConstraint(
            model_name="fill",
            constraint=models.CheckConstraint(condition=~models.Q(instrument_key=""), name="fill_instrument_key_set"),
        ),
        migrations.AlterField(
            model_name="fill",
            name="venue_trade_id",
            field=models.CharField(help_text="The venue's trade id: unique per listing.", max_length=128),
        ),
    ]
