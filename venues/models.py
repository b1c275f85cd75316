"""Venues (trading destinations) and their instrument listings."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from odum_live.fields import DecimalField
from odum_live.instruments import (
    ANY_VENUE,
    VENUE_CODE_SQL_PATTERN,
    InstrumentKeyError,
    parse_instrument_key,
    venue_code_error,
)


def validate_venue_code(code: str) -> None:
    """Raise ``ValidationError`` naming the rule when ``code`` cannot be a venue code (``venue_code_error``)."""
    reason = venue_code_error(code)
    if reason is not None:
        raise ValidationError(f"venue code {code!r}: {reason}", code="invalid")


class Venue(models.Model):
    """A trading destination, e.g. ``BINANCE-SPOT``, in one mode (live / testnet / paper).

    ``config`` names the *environment variables* that hold credentials
    (``{"api_key_env": "BINANCE_API_KEY", "api_secret_env": "BINANCE_API_SECRET"}``), base-URL
    overrides and replay files: never the secrets themselves.
    """

    class Kind(models.TextChoices):
        NAUTILUS = "NAUTILUS", "NautilusTrader adapter"
        EXTERNAL_SDK = "EXTERNAL_SDK", "External SDK adapter"

    class Mode(models.TextChoices):
        LIVE = "live", "Live"
        TESTNET = "testnet", "Testnet"
        PAPER = "paper", "Paper (simulated matching)"

    code = models.CharField(max_length=32, primary_key=True, validators=[validate_venue_code],
                            help_text="Venue code, e.g. BINANCE-SPOT: upper-case letters/digits joined by '-' or "
                                      "'_' (the VENUE part of its listings' instrument keys); not ANY.")
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    adapter = models.CharField(max_length=64, help_text="Adapter name, e.g. binance_spot, deribit.")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAPER)
    enabled = models.BooleanField(default=True)
    maker_fee_bps = DecimalField(default=Decimal("0"), help_text="Maker fee in basis points of notional.")
    taker_fee_bps = DecimalField(default=Decimal("0"), help_text="Taker fee in basis points of notional.")
    latency_ms = DecimalField(default=Decimal("0"), help_text="Estimated order round-trip latency in milliseconds.")
    config = models.JSONField(default=dict, blank=True, help_text="Adapter config; credentials only as env var names.")
    updated_at = models.DateTimeField(auto_now=True)
    # Who switched a venue on or off, or changed its mode, when and why (the admin asks for the reason).
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        # The admin's validator (validate_venue_code) holds for every writer, the ORM and SQL included: a code
        # no instrument key can name ("" or lower case) or ANY would make listings no order can reach.
        constraints = [models.CheckConstraint(
            condition=models.Q(code__regex=VENUE_CODE_SQL_PATTERN) & ~models.Q(code=ANY_VENUE),
            name="venue_code_is_a_key_venue", violation_error_message="venue code must be upper-case letters/digits "
                                                                      "joined by '-' or '_', and not ANY")]

    def __str__(self) -> str:
        return f"{self.code} ({self.mode})"

    def clean(self) -> None:
        for key, value in (self.config or {}).items():
            lowered = key.lower()
            if any(word in lowered for word in ("secret", "key", "password", "token", "passphrase")):
                if not lowered.endswith("_env"):
                    raise ValidationError(
                        {"config": f"config[{key!r}] looks like a credential: store the name of the "
                                   f"environment variable under '{key}_env' instead"}
                    )


class Instrument(models.Model):
    """A listing of an instrument on a venue, with the venue's trading rules.

    Quantities are in base units (contracts for derivatives), prices in quote currency,
    ``min_notional`` in quote currency.
    """

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="instruments")
    instrument_key = models.CharField(max_length=128, unique=True, help_text="Canonical instrument key.")
    equivalence_key = models.CharField(
        max_length=128, db_index=True, editable=False,
        help_text="Key without venue: listings sharing it are the same instrument.",
    )
    nautilus_instrument_id = models.CharField(max_length=128, blank=True)
    venue_symbol = models.CharField(max_length=64)
    base_currency = models.CharField(max_length=16, blank=True)
    quote_currency = models.CharField(max_length=16, blank=True)
    settlement_currency = models.CharField(max_length=16, blank=True)
    tick_size = DecimalField(help_text="Price increment in quote currency.")
    lot_size = DecimalField(help_text="Quantity increment in base units.")
    min_quantity = DecimalField(null=True, blank=True)
    max_quantity = DecimalField(null=True, blank=True)
    min_notional = DecimalField(null=True, blank=True, help_text="Minimum order notional in quote currency.")
    contract_multiplier = DecimalField(default=Decimal("1"))
    is_inverse = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument_key"]

    def __str__(self) -> str:
        return self.instrument_key

    def clean(self) -> None:
        try:
            key = parse_instrument_key(self.instrument_key)
        except InstrumentKeyError as exc:
            raise ValidationError({"instrument_key": str(exc)}) from None
        if key.is_any_venue or (self.venue_id and key.venue != self.venue_id):
            raise ValidationError({"instrument_key": f"venue part must be {self.venue_id}"})
        # is_inverse is what positions and risk go by; a stated @LIN/@INV suffix must say the same
        # (an option key may omit it, and then is_inverse alone decides).
        if key.settlement is not None and bool(self.is_inverse) != (key.settlement == "INV"):
            raise ValidationError({"is_inverse": f"must be {key.settlement == 'INV'} for a key ending @{key.settlement}"})
        for name in ("tick_size", "lot_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValidationError({name: "must be greater than zero"})

    def save(self, *args, **kwargs):
        # Derived column kept in step with the key it is derived from.
        self.equivalence_key = parse_instrument_key(self.instrument_key).equivalence_key
        super().save(*args, **kwargs)
