"""Venue commands for the trading worker (queue ``venues``, consumed by ``celery -A celery_app worker -Q venues``).

Routing: ``celery_app.task_routes`` sends ``venues.tasks.*`` to queue ``venues``, and
:mod:`orders.services.dispatch` names the queue on every publish as well. Tasks take the order id,
claim the order through a service (:mod:`orders.services.venue_commands`: a submit moves it
ROUTED → SUBMITTED under its row lock, so a redelivered task is a recorded no-op) and hand the
command to this process's TradingNode host (:mod:`venues.node.host`). ``acks_late``: a command is
acknowledged only after it ran, so a worker lost mid-command gets it redelivered.

Where no node runs in this process (``ODUM['TRADING_NODE'] == "off"``, e.g. tests of other parts)
the task leaves the order ROUTED and says so in the log: the sweeper and the max-age rejection of
:mod:`orders.services.dispatch` then apply as for an unreachable worker. Where a node should run but
is not ready within ``NODE_READY_WAIT_SECS``, the order is rejected with that reason — a clear
failure, never a silent hang.
"""

from __future__ import annotations

import functools
import logging
import socket
import time

from django.conf import settings

from celery_app import app
from venues.commands import VenueCommandError

logger = logging.getLogger(__name__)

#: Longest wait of a claim's publication (SUBMITTED) for the venue's first event (ACCEPTED, FILLED …),
#: to go out with it: on the paper venues that event is journaled ~10–20 ms after the claim
#: (bench/e2e_latency.py), so subscribers see SUBMITTED at most this much later.
CLAIM_PUBLICATION_HOLD_SECS = 0.05


def _hostname(task) -> str:
    return getattr(task.request, "hostname", None) or socket.gethostname()


def _ready_host():
    """Return this process's ready host, waiting up to NODE_READY_WAIT_SECS; raise VenueCommandError."""
    from venues.node.host import NodeStartError, start_trading_node, trading_node_host

    host = trading_node_host()
    if host is None and settings.ODUM["TRADING_NODE"] == "embedded":
        try:
            host = start_trading_node()
        except NodeStartError:
            host = trading_node_host()  # the failed host, whose error the rejection states
    if host is None:
        raise VenueCommandError("no trading node runs in this process")
    deadline = time.monotonic() + settings.ODUM["NODE_READY_WAIT_SECS"]
    while not host.is_ready():
        if host.stopped or host.error or time.monotonic() > deadline:
            raise VenueCommandError(f"trading node is not ready: {host.error or 'still starting'}")
        time.sleep(0.05)
    return host


def _node_off() -> bool:
    from venues.node.host import trading_node_host

    return settings.ODUM["TRADING_NODE"] == "off" and trading_node_host() is None


def _run_command(task, order_id: str, command: str) -> None:
    # claim → hand to the node (host.submit / host.cancel) → on refusal, record the failure.
    from orders.services import venue_commands
    from venues.node.host import trading_node_host

    if _node_off():
        logger.warning("%s of order %s not handed off: no trading node in this process (TRADING_NODE=off)",
                       command, order_id)
        return
    if command == "submit":
        # The claim's publication goes to the node's journal publisher: the order is handed to the
        # venue without waiting for the channel layer, and its SUBMITTED still precedes the venue's events.
        host = trading_node_host()
        publish = functools.partial(host.journal.publish_later, hold=CLAIM_PUBLICATION_HOLD_SECS) \
            if host is not None else None
        claimed = venue_commands.order_venue_submit_claim(order_id=order_id, worker=_hostname(task), publish=publish)
    else:
        claimed = venue_commands.order_venue_cancel_claim(order_id=order_id, worker=_hostname(task))
    if claimed is None:
        return
    try:
        getattr(_ready_host(), command)(claimed)
    except VenueCommandError as exc:
        getattr(venue_commands, f"order_venue_{command}_failed")(command=claimed, reason=str(exc))


# ``typing=False``: the publisher (orders.services.dispatch) does not check the arguments against the
# signature on every publish; it always sends the one order id.
@app.task(bind=True, name="venues.tasks.submit_order", acks_late=True, ignore_result=True, typing=False)
def submit_order(self, order_id: str) -> None:
    """Submit the order ``order_id`` (UUID text) to its venue through the TradingNode."""
    _run_command(self, order_id, "submit")


@app.task(bind=True, name="venues.tasks.cancel_order", acks_late=True, ignore_result=True, typing=False)
def cancel_order(self, order_id: str) -> None:
    """Cancel the order ``order_id`` (UUID text) at its venue through the TradingNode."""
    _run_command(self, order_id, "cancel")
