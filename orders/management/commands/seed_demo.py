"""``manage.py seed_demo``: the demo venues, instruments, strategies, users, risk limits and kill switches.

Idempotent: it creates what is missing and never overwrites what exists, so a risk manager's
tuned limit, a disabled venue or a HALTED switch survive ``make run`` (which runs this command
on every start). A second run changes nothing and says so. One exception, for data this command
itself wrote: a venue whose ``config["replay"]`` is still exactly a block an earlier version
seeded (:data:`EARLIER_REPLAY`, a shape the replay client no longer reads) gets the current block;
any other old-shape block is reported as a warning and left alone.

Reference figures and their sources:

* BINANCE-SPOT BTCUSDT: tick 0.01, lot 0.000001, maker/taker fee 0.001 (10 bps) from the recorded
  instrument definition ``../shared/data/market/binance_spot_btcusdt_instrument.txt``
  (NautilusTrader ``CurrencyPair`` BTCUSDT.BINANCE). Minimum notional 10 USDT: Binance spot
  ``GET /api/v3/exchangeInfo`` BTCUSDT ``MIN_NOTIONAL`` filter (``minNotional`` 10.00000000) as in
  force when the recorded 2021 data was taken; maximum quantity 9000 BTC from its ``LOT_SIZE``
  filter (``maxQty``).
* BINANCE-FUTURES BTCUSDT perpetual (USDⓈ-M, linear, contract unit 1 BTC): tick 0.10
  (``PRICE_FILTER.tickSize``), lot and minimum quantity 0.001 BTC (``LOT_SIZE.stepSize`` /
  ``minQty``) from Binance ``GET /fapi/v1/exchangeInfo``; minimum notional 100 USDT from Binance's
  FAQ "USDⓈ-Margined Futures Contract Specifications" ("the Minimum Notional Value for BTCUSDT is
  100 USDT"). Fees maker 0.0200 % / taker 0.0500 % (2 / 5 bps): Binance "Fee Schedule of Binance
  Futures", USDⓈ-M regular user tier.
* Latency 5 ms: the real Binance adapter against a loopback venue stub measured LIMIT → Accepted
  in 4.7–6.1 ms (``../shared/NAUTILUS_NOTES.md``); replace with the live figure when trading live.
* Velocity limits sit under Binance's spot order-rate limit of 100 orders per 10 s per account
  (``exchangeInfo.rateLimits``: ``ORDERS``, ``SECOND``, ``intervalNum`` 10, ``limit`` 100).
"""

import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from odum_live.instruments import parse_instrument_key
from orders.management.service_accounts import group_get, service_account_ensure
from orders.models import Strategy
from risk.models import RiskLimit, Scope, TradingState
from risk.services import trading_state_set
from venues.models import Instrument, Venue
from venues.replay.client import VENUE_REPLAY_KEYS

SEED_ACTOR = "seed_demo"
SEED_REASON = "seeded"

VENUES = [
    {
        "code": "BINANCE-SPOT",
        "name": "Binance Spot",
        "kind": Venue.Kind.NAUTILUS,
        "adapter": "binance_spot",
        "mode": Venue.Mode.PAPER,
        "maker_fee_bps": Decimal("10"),
        "taker_fee_bps": Decimal("10"),
        "latency_ms": Decimal("5"),
        "config": {
            "account_type": "SPOT",
            "api_key_env": "BINANCE_API_KEY",
            "api_secret_env": "BINANCE_API_SECRET",
            # Paper mode: the recorded Binance BTCUSDT quotes and trades of 2021-01-08 (46 s), looped
            # in real time (venues/node/config.py describes the shape).
            "replay": {
                "data_dir": "../shared/data",
                "speed": 1.0,
                "loop": True,
                "instruments": {
                    "BINANCE-SPOT:SPOT_PAIR:BTC-USDT": [
                        {"kind": "quotes", "format": "binance_quotes_parquet",
                         "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"},
                        {"kind": "trades", "format": "binance_trades_parquet",
                         "path": "market/binance_spot_btcusdt_trades_2021-01-08.parquet"},
                    ],
                },
            },
        },
    },
    {
        "code": "BINANCE-FUTURES",
        "name": "Binance USDⓈ-M Futures",
        "kind": Venue.Kind.NAUTILUS,
        "adapter": "binance_futures",
        "mode": Venue.Mode.PAPER,
        "maker_fee_bps": Decimal("2"),
        "taker_fee_bps": Decimal("5"),
        "latency_ms": Decimal("5"),
        "config": {
            "account_type": "USDT_FUTURES",
            "api_key_env": "BINANCE_API_KEY",
            "api_secret_env": "BINANCE_API_SECRET",
            # Paper mode: the recorded BTC perpetual 1-minute bars of January 2022 (the only sizable
            # futures recording), one recorded minute per second (speed 60) so the top of book derived
            # from each bar stays fresher than MARKET_DATA_MAX_AGE_SECS; prices off the 0.1 tick (26
            # of 180,124) rounded half-even onto it. The Tardis futures book snapshots are not used:
            # ten snapshots of 2020-09-01 at 11,657 USDT on the old 0.01 tick cannot join 2022 bars.
            "replay": {
                "data_dir": "../shared/data",
                "speed": 60.0,
                "loop": True,
                "instruments": {
                    "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN": [
                        {"kind": "bars", "format": "bars_csv", "interval": "1m", "price_rounding": "half_even",
                         "path": "market/btc_perp_1m_bars_2022-01.csv"},
                    ],
                },
            },
        },
    },
]

# Replay blocks earlier versions of this command wrote, in shapes the replay client no longer reads.
# A venue still holding one exactly (never edited since) is migrated to the current block; one with
# another old-shape block is reported and left alone (an operator wrote it).
EARLIER_REPLAY = {
    "BINANCE-SPOT": [{
        "data_dir": "../shared/data",
        "instrument": "market/binance_spot_btcusdt_instrument.txt",
        "quotes": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet",
        "trades": "market/binance_spot_btcusdt_trades_2021-01-08.parquet",
        "depth_snapshot": "market/binance_spot_btcusdt_depth_snapshot.csv",
        "depth_updates": "market/binance_spot_btcusdt_depth_updates.csv",
    }],
    "BINANCE-FUTURES": [{
        "data_dir": "../shared/data",
        "book_snapshots": "market/tardis_binance_futures_btcusdt_book_snapshot_25.csv",
        "bars_1m": "market/btc_perp_1m_bars_2022-01.csv",
    }],
}

INSTRUMENTS = [
    {
        "key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT",
        "tick_size": Decimal("0.01"),
        "lot_size": Decimal("0.000001"),
        "min_quantity": Decimal("0.000001"),
        "max_quantity": Decimal("9000"),
        "min_notional": Decimal("10"),
    },
    {
        "key": "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN",
        "tick_size": Decimal("0.1"),
        "lot_size": Decimal("0.001"),
        "min_quantity": Decimal("0.001"),
        "max_quantity": None,
        "min_notional": Decimal("100"),
    },
]

STRATEGIES = [("demo", "Demo strategy"), ("demo-2", "Demo strategy 2")]

# (username, group, is_staff, trades the demo strategies)
USERS = [("trader", "trader", False, True), ("risk", "risk manager", True, False)]

_K = RiskLimit.Kind
# Service-wide ceilings; quantities in base units (BTC for the seeded instruments), notionals in USDT.
GLOBAL_LIMITS = [
    (_K.MAX_ORDER_QUANTITY, "10", "Largest single order, base units"),
    (_K.MAX_ORDER_NOTIONAL, "1000000", "Largest single order, quote currency"),
    (_K.PRICE_COLLAR_BPS, "500", "Limit price at most 5 % from the reference mid"),
    (_K.MAX_ORDERS_PER_SECOND, "50", "All strategies together"),
    (_K.MAX_ORDERS_PER_MINUTE, "1500", "All strategies together"),
    (_K.MAX_POSITION_QUANTITY, "50", "Projected net position per instrument, base units"),
    (_K.MAX_POSITION_NOTIONAL, "2500000", "Projected net position per instrument, quote currency"),
    (_K.MAX_GROSS_EXPOSURE, "10000000", "Positions plus open orders, quote currency"),
    (_K.REPEATED_ORDER_WINDOW_SECS, "1", "Identical orders within this window are denied"),
]
# Per demo strategy: tighter than the service-wide ceilings.
STRATEGY_LIMITS = [
    (_K.MAX_ORDER_QUANTITY, "2", "Largest single order, base units"),
    (_K.MAX_ORDER_NOTIONAL, "100000", "Largest single order, quote currency"),
    (_K.PRICE_COLLAR_BPS, "200", "Limit price at most 2 % from the reference mid"),
    (_K.MAX_ORDERS_PER_SECOND, "10", "Under Binance's 100 orders / 10 s account limit"),
    (_K.MAX_ORDERS_PER_MINUTE, "300", "Sustained order rate"),
    (_K.MAX_POSITION_QUANTITY, "5", "Projected net position per instrument, base units"),
    (_K.MAX_POSITION_NOTIONAL, "250000", "Projected net position per instrument, quote currency"),
    (_K.MAX_GROSS_EXPOSURE, "500000", "Positions plus open orders, quote currency"),
    (_K.REPEATED_ORDER_WINDOW_SECS, "2", "Identical orders within this window are denied"),
]


@dataclass
class _Report:
    """What a run did, in order: one line per change, a count of rows that were already right."""

    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unchanged: int = 0
    credentials: list[tuple[str, str]] = field(default_factory=list)
    existing_users: list[str] = field(default_factory=list)

    def add(self, label: str, created: bool) -> None:
        if created:
            self.changes.append(f"created {label}")
        else:
            self.unchanged += 1


class Command(BaseCommand):
    help = (
        "Create the demo data (Binance spot and futures paper venues, BTC-USDT instruments, strategies "
        "demo and demo-2, users trader and risk, default risk limits, ACTIVE kill switches). "
        "Idempotent: existing rows are never overwritten."
    )

    def handle(self, *args, **options):
        """Create what is missing, then print a summary and any new credentials."""
        report = _Report()
        with transaction.atomic():
            self._venues(report)
            self._instruments(report)
            strategies = self._strategies(report)
            self._users(report, strategies)
            self._risk_limits(report, strategies)
            self._trading_states(report, strategies)
        self._print(report)

    # -- steps ---------------------------------------------------------------------------------
    def _venues(self, report: _Report) -> None:
        for spec in VENUES:
            values = {k: v for k, v in spec.items() if k != "code"}
            venue = Venue(code=spec["code"], **values)
            venue.clean()  # the config must name env vars, not hold secrets
            existing, created = Venue.objects.get_or_create(code=spec["code"], defaults=values)
            report.add(f"venue {spec['code']}", created)
            if not created:
                self._migrate_replay(existing, spec, report)

    def _migrate_replay(self, venue: Venue, spec: dict, report: _Report) -> None:
        replay = (venue.config or {}).get("replay")
        if not isinstance(replay, dict) or not set(replay) - VENUE_REPLAY_KEYS:
            return  # absent, or in the current shape: never overwritten
        old_keys = sorted(set(replay) - VENUE_REPLAY_KEYS)
        if replay in EARLIER_REPLAY.get(venue.code, []):
            venue.config = {**venue.config, "replay": spec["config"]["replay"]}
            venue.save(update_fields=["config", "updated_at"])
            report.changes.append(f"migrated venue {venue.code} config['replay'] from an earlier seed's shape "
                                  f"(keys {old_keys}) to the replay client's (sources under 'instruments')")
        else:
            report.warnings.append(
                f"venue {venue.code}: config['replay'] has key(s) {old_keys} of an older shape the replay client "
                f"does not read, and differs from what an earlier seed wrote, so it was left as it is: give "
                f"each file as a source under config['replay']['instruments'] (see venues/node/config.py)")

    def _instruments(self, report: _Report) -> None:
        for spec in INSTRUMENTS:
            key = parse_instrument_key(spec["key"])
            # Linear (and spot) listings settle in the quote currency, inverse ones in the base.
            settlement = key.base if key.settlement == "INV" else key.quote
            values = {
                "venue_id": key.venue,
                "nautilus_instrument_id": key.nautilus_instrument_id(),
                "venue_symbol": key.venue_symbol(),
                "base_currency": key.base,
                "quote_currency": key.quote,
                "settlement_currency": settlement,
                "tick_size": spec["tick_size"],
                "lot_size": spec["lot_size"],
                "min_quantity": spec["min_quantity"],
                "max_quantity": spec["max_quantity"],
                "min_notional": spec["min_notional"],
                "contract_multiplier": Decimal("1"),
                "is_inverse": key.settlement == "INV",
            }
            _, created = Instrument.objects.get_or_create(instrument_key=str(key), defaults=values)
            report.add(f"instrument {key} ({values['nautilus_instrument_id']})", created)

    def _strategies(self, report: _Report) -> list[Strategy]:
        strategies = []
        for strategy_id, name in STRATEGIES:
            strategy, created = Strategy.objects.get_or_create(pk=strategy_id, defaults={"name": name})
            report.add(f"strategy {strategy_id}", created)
            _, changes = service_account_ensure(strategy=strategy)
            report.changes.extend(changes)
            report.unchanged += not changes
            strategies.append(strategy)
        return strategies

    def _users(self, report: _Report, strategies: list[Strategy]) -> None:
        user_model = get_user_model()
        for username, group_name, is_staff, trades_demo in USERS:
            group = group_get(group_name)
            user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
            if user is None:
                password = secrets.token_urlsafe(12)
                user = user_model.objects.create_user(username=username, password=password, is_staff=is_staff)
                report.credentials.append((username, password))
            else:
                report.existing_users.append(username)
            label = f"user {username!r}" + (" (staff, admin access)" if is_staff else "")
            report.add(label, created=username not in report.existing_users)
            if not user.groups.filter(pk=group.pk).exists():
                user.groups.add(group)
                report.changes.append(f"added {username!r} to group {group_name!r}")
            if trades_demo:
                for strategy in strategies:
                    if not strategy.traders.filter(pk=user.pk).exists():
                        strategy.traders.add(user)
                        report.changes.append(f"listed {username!r} as a trader of strategy {strategy.pk!r}")

    def _risk_limits(self, report: _Report, strategies: list[Strategy]) -> None:
        plan = [(Scope.GLOBAL, "", GLOBAL_LIMITS)] + [(Scope.STRATEGY, s.pk, STRATEGY_LIMITS) for s in strategies]
        for scope, scope_key, limits in plan:
            for kind, value, description in limits:
                _, created = RiskLimit.objects.get_or_create(
                    scope=scope,
                    scope_key=scope_key,
                    kind=kind,
                    defaults={"value": Decimal(value), "enabled": True, "description": description},
                )
                where = f"{scope}:{scope_key}" if scope_key else scope
                report.add(f"risk limit {where} {kind}", created)

    def _trading_states(self, report: _Report, strategies: list[Strategy]) -> None:
        scopes = (
            [(Scope.GLOBAL, "")]
            + [(Scope.VENUE, spec["code"]) for spec in VENUES]
            + [(Scope.STRATEGY, s.pk) for s in strategies]
        )
        for scope, scope_key in scopes:
            where = f"{scope}:{scope_key}" if scope_key else scope
            if TradingState.objects.filter(scope=scope, scope_key=scope_key).exists():
                # Never touch an existing switch: re-seeding must not lift a halt.
                report.unchanged += 1
                continue
            trading_state_set(
                scope=scope, scope_key=scope_key, state=TradingState.State.ACTIVE, reason=SEED_REASON, actor=SEED_ACTOR
            )
            report.changes.append(f"created trading state {where} ACTIVE (reason {SEED_REASON!r})")

    # -- output --------------------------------------------------------------------------------
    def _print(self, report: _Report) -> None:
        for change in report.changes:
            self.stdout.write(f"  {change}")
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"  {warning}"))
        if report.credentials:
            self.stdout.write("")
            self.stdout.write(self.style.WARNING("New users (passwords are shown once; store them now):"))
            for username, password in report.credentials:
                self.stdout.write(f"  {username} / {password}")
        if report.existing_users:
            self.stdout.write(
                f"Users {', '.join(report.existing_users)} already exist; their passwords are unchanged. "
                "Reset one with: manage.py changepassword <username>"
            )
        if report.changes:
            self.stdout.write(
                self.style.SUCCESS(
                    f"seed_demo: {len(report.changes)} changes; {report.unchanged} demo rows were already in place."
                )
            )
            self.stdout.write("Next: the admin at /admin/ as 'risk'; an API token with: manage.py issue_api_token demo")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"seed_demo: nothing to do, all {report.unchanged} demo rows already exist (nothing changed)."
                )
            )
