"""Periodic order tasks (queue ``default``; scheduled by ``celery_app.beat_schedule``)."""

from __future__ import annotations

from celery_app import app


@app.task(name="orders.tasks.redispatch_stale_orders", ignore_result=True)
def redispatch_stale_orders() -> dict:
    """Re-send venue commands whose hand-off is stale (the outbox sweeper, every 10 s).

    Returns
    -------
    dict
        Counts ``{"submits": n, "cancels": n, "failed": n, "rejected": n, "moved_on": n,
        "stopped_early": bool, "skipped_locked": bool}`` (logged by Celery; results are not stored).
    """
    from orders.services.dispatch import orders_redispatch_stale

    report = orders_redispatch_stale()
    return {
        "submits": len(report.submits),
        "cancels": len(report.cancels),
        "failed": len(report.failed),
        "rejected": len(report.rejected),
        "moved_on": len(report.moved_on),
        "stopped_early": report.stopped_early,
        "skipped_locked": report.skipped_locked,
    }
