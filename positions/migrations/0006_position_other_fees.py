"""Positions keep the fees paid in a third currency (e.g. BNB) apart, in that currency: ``Position.other_fees``.

Until now such a fee (one no rate converts to the listing's PnL currency: neither that currency nor
the pair's other one) was left out of the position with only a note on the fill's order event, so
the fees shown silently omitted it. Adds ``other_fees`` ({currency: decimal text}) and fills it in
from the stored fills: each fill goes to the position of its order's strategy, venue and listing (as
the journal booked it), and a fee that ``positions.maths.fee_in_pnl_currency`` does not convert, by
the listing's terms (``venues.Instrument``, its blank currencies and, without a listing, its inverse
flag taken from the canonical key, as ``positions.selectors`` reads them), is added to its currency's
total (``positions.maths.add_other_fee``). ``fees`` and ``realized_pnl`` are unchanged.

Forwards, a fill whose position does not exist stops the migration naming the fills (the journal
books a fill and its position in one transaction). Backwards, the column is dropped.
"""

from decimal import Decimal

from django.db import migrations, models

from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from positions.maths import add_other_fee, fee_in_pnl_currency


def _listing_terms(Instrument, instrument_key):
    # (inverse, base, quote, settlement) of a listing, its blanks completed from the key.
    try:
        key = parse_instrument_key(instrument_key)
        key_base, key_quote, key_inverse = key.base or "", key.quote or "", key.settlement == "INV"
    except InstrumentKeyError:
        key_base, key_quote, key_inverse = "", "", False
    listing = (Instrument.objects.filter(instrument_key=instrument_key)
               .values_list("is_inverse", "base_currency", "quote_currency", "settlement_currency").first())
    if listing is None:
        return key_inverse, key_base, key_quote, ""
    inverse, base, quote, settlement = listing
    return inverse, base or key_base, quote or key_quote, settlement


def _backfill_other_fees(apps, schema_editor):
    Fill = apps.get_model("orders", "Fill")
    Instrument = apps.get_model("venues", "Instrument")
    Position = apps.get_model("positions", "Position")
    terms, other_fees, fills_of = {}, {}, {}
    rows = (Fill.objects.exclude(fee=0).exclude(fee_currency="").order_by("id")
            .values_list("id", "order__strategy_id", "venue", "instrument_key", "fee", "fee_currency", "price"))
    for fill_id, strategy_id, venue, instrument_key, fee, fee_currency, price in rows.iterator():
        if instrument_key not in terms:
            terms[instrument_key] = _listing_terms(Instrument, instrument_key)
        inverse, base, quote, settlement = terms[instrument_key]
        if fee_in_pnl_currency(fee=fee, fee_currency=fee_currency, price=price, inverse=inverse, base=base,
                               quote=quote, settlement=settlement) is not None:
            continue
        slot = (strategy_id, venue, instrument_key)
        other_fees[slot] = add_other_fee(other_fees.get(slot, {}), currency=fee_currency, fee=fee)
        fills_of.setdefault(slot, []).append(fill_id)
    missing = []
    for (strategy_id, venue, instrument_key), fees in other_fees.items():
        updated = Position.objects.filter(strategy_id=strategy_id, venue=venue,
                                          instrument_key=instrument_key).update(other_fees=fees)
        if not updated:
            missing.extend(fills_of[(strategy_id, venue, instrument_key)])
    if missing:
        raise RuntimeError(f"positions.Position.other_fees: fills {sorted(missing)[:10]} have no position of their "
                           "order's strategy, venue and listing; nothing was changed")


class Migration(migrations.Migration):

    dependencies = [
        ("positions", "0005_reconciliation_finding_external_fill"),
        ("orders", "0003_fill_side_identity"),
        ("venues", "0002_venue_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="position",
            name="other_fees",
            field=models.JSONField(blank=True, default=dict, help_text=(
                "Fees paid in a third currency (neither the PnL currency nor the pair's other one, e.g. BNB), per "
                "currency: {currency: decimal text}. Never converted (no rate is known), so not in fees or "
                "realized PnL.")),
        ),
        migrations.AlterField(
            model_name="position",
            name="fees",
            field=models.DecimalField(decimal_places=18, default=Decimal("0"), help_text=(
                "Fees paid, in the PnL currency (those paid in the pair's other currency converted at their fill "
                "price); realized PnL is net of them."), max_digits=36),
        ),
        migrations.RunPython(_backfill_other_fees, migrations.RunPython.noop, elidable=False),
    ]
