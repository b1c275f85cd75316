"""``manage.py status``: every component green / amber / red with its detail (the /status page's report).

Exit status 0 when nothing is red, 1 otherwise (scripts and probes can test it).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from odum_live.health import RED, StatusReport, status_report


def format_report(report: StatusReport) -> str:
    """Return one line per component: ``LEVEL  section  component  detail``, then the overall level."""
    width = max((len(item.component) for item in report.items), default=9)
    lines = [f"status at {report.ts:%Y-%m-%d %H:%M:%S} UTC"]
    for item in report.items:
        facts = ""
        if item.facts:
            age = item.facts.get("market_data_age_secs")
            facts = (f"mode {item.facts.get('mode')}, connected {'yes' if item.facts.get('connected') else 'no'}, "
                     f"market data age {'—' if age is None else f'{age} s'}; ")
        error = f" [{item.error}]" if item.error else ""
        lines.append(f"{item.level.upper():<6} {item.section:<15} {item.component:<{width}}  {facts}{item.detail}{error}")
    lines.append(f"overall: {report.level}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = ("Check web, database, Redis, broker, channel layer, Celery workers, trading node, venues, "
            "reconciliation findings and storage; exit 1 when anything is red.")

    def handle(self, *args, **options):
        report = status_report()
        self.stdout.write(format_report(report))
        red = [item.component for item in report.items if item.level == RED]
        if red:
            raise CommandError(f"red: {', '.join(red)}", returncode=1)
