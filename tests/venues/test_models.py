"""venues.models: the listing's own invariants."""

import pytest
from django.core.exceptions import ValidationError

from tests.venues.factories import InstrumentFactory, VenueFactory


@pytest.mark.django_db
def test_instrument_clean_is_inverse_contradicting_the_key_suffix_is_refused():
    # Arrange: an @INV perpetual flagged linear
    listing = InstrumentFactory.build(venue=VenueFactory(code="DERIBIT", adapter="deribit"),
                                      instrument_key="DERIBIT:PERPETUAL:BTC-USD@INV", is_inverse=False)

    # Act
    with pytest.raises(ValidationError) as caught:
        listing.clean()

    # Assert
    assert "is_inverse" in caught.value.message_dict


@pytest.mark.django_db
def test_instrument_clean_option_without_suffix_takes_its_settlement_from_is_inverse():
    # Arrange: the suffix is optional for options: is_inverse alone says how the listing settles
    listing = InstrumentFactory.build(venue=VenueFactory(code="DERIBIT", adapter="deribit"),
                                      instrument_key="DERIBIT:OPTION:BTC-USD-50000-20241231-C", is_inverse=True)

    # Act / Assert: no error
    listing.clean()


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["", "binance-spot", "BINANCE SPOT", "-OKX", "ANY"])
def test_venue_code_no_instrument_key_can_name_is_refused_by_the_database(code):
    # Arrange: the admin validates the code; the ORM and SQL writers do not go through the admin
    from django.db import IntegrityError, transaction

    # Act / Assert: the database refuses the row itself
    with pytest.raises(IntegrityError), transaction.atomic():
        VenueFactory(code=code)


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "reason"), [("", "cannot be blank"), ("okx", "upper-case letters/digits"),
                                              ("ANY", "reserved")])
def test_venue_code_validation_names_the_field_and_the_rule(code, reason):
    # Arrange
    from venues.models import Venue

    venue = Venue(code=code, kind=Venue.Kind.NAUTILUS, adapter="okx")
    # Act
    with pytest.raises(ValidationError) as refused:
        venue.full_clean()
    # Assert
    assert reason in " ".join(refused.value.message_dict["code"])


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["BINANCE-SPOT", "OKX", "IB_PAPER", "AAA-DERIBIT"])
def test_venue_code_of_a_key_venue_is_stored(code):
    # Act
    venue = VenueFactory(code=code)
    # Assert
    venue.full_clean()
    assert venue.pk == code
