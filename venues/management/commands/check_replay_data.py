"""``manage.py check_replay_data``: say at start-up when paper venues cannot replay their recorded data.

``make run`` runs it after ``seed_demo`` (issue #3 §7: the paper BINANCE-SPOT and BINANCE-FUTURES
venues replay the recorded BTCUSDT data when it is reachable, "with a clear message where it is
not"). The check is the trading node's own, :func:`venues.node.config.node_plan`, which reports a
paper listing whose replay files are missing in :attr:`~venues.node.config.VenuePlan.problems`;
this command only prints those problems of the enabled paper venues, with where the data was
looked for, what follows and how to fix it. Without the data the service still starts, so the
exit status is 0 either way: the warning goes to stderr, the all-clear line to stdout.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from venues.models import Venue


def _data_dir_line(venue: Venue) -> str:
    from venues.node.config import DEFAULT_REPLAY_DATA_DIR, replay_data_dir  # the node plan's own resolution

    replay = (venue.config or {}).get("replay")
    replay = replay if isinstance(replay, dict) else {}
    configured = replay.get("data_dir", DEFAULT_REPLAY_DATA_DIR)
    resolved = replay_data_dir(replay).resolve()
    state = "exists" if resolved.is_dir() else "no such directory"
    return f"config['replay']['data_dir'] = {configured!r} -> {resolved} ({state})"


class Command(BaseCommand):
    help = ("Check that every enabled paper venue can replay its recorded market data (the trading node's "
            "own check); print what is missing, what follows and how to fix it. Exit status 0 either way.")

    def handle(self, *args, **options):
        """Print the paper venues' replay problems to stderr, or one all-clear line to stdout."""
        from venues.node.config import node_plan  # imports NautilusTrader: only when the command runs

        paper = [plan for plan in node_plan().venues if plan.mode == Venue.Mode.PAPER]
        broken = [plan for plan in paper if plan.problems]
        if not broken:
            codes = ", ".join(plan.code for plan in paper) or "none enabled"
            self.stdout.write(f"replay data: every paper venue's recorded market data found ({codes})")
            return
        venues = {venue.code: venue for venue in Venue.objects.filter(code__in=[plan.code for plan in broken])}
        codes = ", ".join(plan.code for plan in broken)
        root = Path(settings.BASE_DIR).resolve()
        lines = [f"WARNING: market data not available for paper venue(s) {codes}:"]
        for plan in broken:
            lines.append(f"  {plan.code}: {_data_dir_line(venues[plan.code])}")
            lines.extend(f"    - {problem}" for problem in plan.problems)
        lines += [
            "  What happens: the service starts, but the trading node has no market data for these listings, so",
            "    pre-trade risk DENIES their orders (\"missing: no market data for <listing> (venue <code>: <problem",
            "    above>)\"); /status (logged in) shows the venue red with the same problem, /api/health lists it",
            "    under trading_node.",
            "  Fix: put the recorded data (the files named above) where they were looked for, or point the",
            "    venue's config['replay']['data_dir'] at the directory holding them in the admin",
            f"    (/admin/venues/venue/; absolute, or relative to the project root {root});",
            "    there is no environment variable for it. A venue taking its market data from the venue",
            "    (config['paper']['market_data'] = 'venue') needs the probed URL reachable and its credentials",
            "    set instead. Then restart (make run).",
        ]
        self.stderr.write("\n".join(lines), style_func=self.style.WARNING)
