"""Venue commands for the trading worker (queue ``venues``, consumed by ``celery -A celery_app worker -Q venues``).

Routing: ``celery_app.task_routes`` sends ``venues.tasks.*`` to queue ``venues``, and
:mod:`orders.services.dispatch` names the queue on every publish as well. Tasks take the order id,
load the row and call a service (CONVENTIONS.md). ``acks_late``: a
command is acknowledged only after it ran, so a worker lost mid-command gets it redelivered
(``task_reject_on_worker_lost``). Delivery is at least once; the services treat a repeated or
outdated command as a recorded no-op.

For now the bodies only record receipt (:func:`orders.services.venue_commands.order_venue_command_received`);
the venue layer (TradingNode hand-off, external adapters) arrives with the next issue.
"""

from __future__ import annotations

import socket

from celery_app import app


def _hostname(task) -> str:
    return getattr(task.request, "hostname", None) or socket.gethostname()


@app.task(bind=True, name="venues.tasks.submit_order", acks_late=True, ignore_result=True)
def submit_order(self, order_id: str) -> None:
    """Submit the order ``order_id`` (UUID text) to its venue: for now, record its receipt."""
    from orders.services.venue_commands import order_venue_command_received

    order_venue_command_received(order_id=order_id, command="submit", worker=_hostname(self))


@app.task(bind=True, name="venues.tasks.cancel_order", acks_late=True, ignore_result=True)
def cancel_order(self, order_id: str) -> None:
    """Cancel the order ``order_id`` (UUID text) at its venue: for now, record its receipt."""
    from orders.services.venue_commands import order_venue_command_received

    order_venue_command_received(order_id=order_id, command="cancel", worker=_hostname(self))
