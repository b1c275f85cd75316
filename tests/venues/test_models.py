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
