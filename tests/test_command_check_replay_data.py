"""``manage.py check_replay_data``: what ``make run`` says about the paper venues' recorded data (issue #3 §7)."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.helpers import needs_market_data

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
SPOT_KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
PERP_KEY = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"


def check_replay_data() -> tuple[str, str]:
    """Run the command on the demo venues as ``make run`` does (after ``seed_demo``); return (stdout, stderr)."""
    call_command("seed_demo", stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("check_replay_data", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_check_replay_data_without_the_data_names_the_paths_venues_consequence_and_fix(settings, tmp_path):
    # Arrange
    # The seeded data_dir "../shared/data" is relative to the project root: under this root it is
    # tmp_path/shared/data, which does not exist.
    settings.BASE_DIR = tmp_path / "project"
    data_dir = tmp_path.resolve() / "shared" / "data"

    # Act
    out, err = check_replay_data()

    # Assert
    assert out == ""
    assert err.startswith("WARNING: market data not available for paper venue(s) "
                          "BINANCE-FUTURES, BINANCE-SPOT:\n")
    for venue in ("BINANCE-SPOT", "BINANCE-FUTURES"):
        assert f"  {venue}: config['replay']['data_dir'] = '../shared/data' -> {data_dir} (no such directory)\n" in err
    for listing in (SPOT_KEY, PERP_KEY):
        assert f"    - {listing}: replay data unavailable: " in err
    # Every missing file is named, the spot listing's two (quotes and trades) in one line.
    assert err.count("replay file not found") == 3
    assert "2 replay files not found: " in err
    assert str(data_dir / "market" / "binance_spot_btcusdt_quotes_2021-01-08.parquet") in err
    assert str(data_dir / "market" / "binance_spot_btcusdt_trades_2021-01-08.parquet") in err
    assert str(data_dir / "market" / "btc_perp_1m_bars_2022-01.csv") in err
    assert "pre-trade risk DENIES their orders" in err and "/status (logged in) shows the venue red" in err
    assert "config['replay']['data_dir']" in err.split("Fix:", 1)[1]


@needs_market_data
def test_check_replay_data_with_the_data_present_prints_no_warning():
    # Act
    out, err = check_replay_data()

    # Assert
    assert err == ""
    assert out == "replay data: every paper venue's recorded market data found (BINANCE-FUTURES, BINANCE-SPOT)\n"


def test_make_run_checks_the_replay_data_before_serving():
    # Arrange
    makefile = (ROOT / "Makefile").read_text()

    # Act
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]

    # Assert
    seed, check = recipe.index("$(MANAGE) seed_demo;"), recipe.index("$(MANAGE) check_replay_data;")
    assert seed < check < recipe.index("exec $(VENV)/bin/daphne")
