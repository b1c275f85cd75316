"""The positions admin as a risk manager reads it: every PnL amount with the currency it is in."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.orders.factories import StrategyFactory, UserFactory
from tests.orders.web_fixtures import role_group
from tests.positions.factories import PositionFactory
from tests.venues.factories import listing_of

INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
UNLISTED = "OKX:PERPETUAL:ETH-USDT@LIN"


@pytest.fixture
def rm_client(client, db):
    user = UserFactory(username="rm", is_staff=True)
    user.groups.add(role_group("risk manager"))
    client.force_login(user)
    return client


@pytest.fixture
def positions(db):
    """An inverse position (PnL in BTC), a spot one (USDT) and one whose listing is gone (key: USDT)."""
    strategy = StrategyFactory(id="demo")
    listing_of(INV, contract_multiplier=Decimal("10"))
    listing_of(SPOT)
    return {
        key: PositionFactory(strategy=strategy, venue=key.split(":")[0], instrument_key=key,
                             equivalence_key=key.split(":", 1)[1], quantity=Decimal("1"),
                             avg_entry_price=Decimal("40000"), realized_pnl=Decimal(realized))
        for key, realized in ((INV, "0.00486"), (SPOT, "120.5"), (UNLISTED, "3"))
    }


def test_position_admin_list_names_each_rows_pnl_currency(rm_client, positions):
    # Act
    response = rm_client.get(reverse("admin:positions_position_changelist"))

    # Assert: one column says which currency the row's PnL and fees are in, as the positions page does
    assert response.status_code == 200
    cells = [line.strip() for line in response.content.decode().split("<td") if "field-pnl_currency" in line]
    currencies = sorted(cell.split(">", 1)[1].split("<", 1)[0] for cell in cells)
    assert currencies == ["BTC", "USDT", "USDT"]


def test_position_admin_page_of_an_inverse_position_names_btc(rm_client, positions):
    # Act
    response = rm_client.get(reverse("admin:positions_position_change", args=[positions[INV].pk]))

    # Assert
    content = response.content.decode()
    assert response.status_code == 200
    assert "PnL currency" in content and ">BTC<" in content


@pytest.fixture
def external_fill(db):
    from positions.services import reconciliation_record_external_fill

    finding, _ = reconciliation_record_external_fill(
        venue="BINANCE-SPOT", instrument_key=SPOT, side="SELL", quantity=Decimal("0.25"), price=Decimal("41000.5"),
        trade_id="T-77", client_order_id="hand-placed-1", filled_at=timezone.now())
    return finding


def test_finding_admin_lists_the_external_fill_and_a_risk_manager_marks_it_resolved(rm_client, external_fill):
    url = reverse("admin:positions_reconciliationfinding_changelist")

    page = rm_client.get(url).content.decode()
    response = rm_client.post(url, {"action": "mark_resolved", "_selected_action": [external_fill.pk]})

    assert "hand-placed-1" in page and "T-77" in page and "41000.5" in page
    assert response.status_code == 302
    external_fill.refresh_from_db()
    assert external_fill.resolved_at is not None


def test_finding_admin_viewer_sees_findings_but_cannot_resolve_them(client, external_fill):
    user = UserFactory(username="v", is_staff=True)
    user.groups.add(role_group("viewer"))
    client.force_login(user)
    url = reverse("admin:positions_reconciliationfinding_changelist")

    page = client.get(url)
    client.post(url, {"action": "mark_resolved", "_selected_action": [external_fill.pk]})

    assert page.status_code == 200 and "mark_resolved" not in page.content.decode()
    external_fill.refresh_from_db()
    assert external_fill.resolved_at is None


def test_position_admin_shows_fees_in_a_third_currency_with_their_currency(rm_client, positions):
    # Arrange: the spot position also paid BNB and OKB
    from positions.models import Position

    Position.objects.filter(pk=positions[SPOT].pk).update(other_fees={"BNB": "0.0125", "OKB": "2"})

    # Act
    listed = rm_client.get(reverse("admin:positions_position_changelist")).content.decode()
    page = rm_client.get(reverse("admin:positions_position_change", args=[positions[SPOT].pk])).content.decode()

    # Assert
    assert '<td class="field-other_fees_">0.0125 BNB + 2 OKB</td>' in listed
    assert '<div class="readonly">0.0125 BNB + 2 OKB</div>' in page
