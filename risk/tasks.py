"""Periodic risk tasks (queue ``default``; scheduled by ``celery_app.beat_schedule``)."""

from __future__ import annotations

from celery_app import app


@app.task(name="risk.tasks.rebuild_open_exposure", ignore_result=True)
def rebuild_open_exposure() -> dict:
    """Reconcile the open-order exposure totals with the order table (every 5 minutes).

    Returns
    -------
    dict
        ``{"drift": n}``: how many totals differed and were repaired (each is logged as an error
        by :func:`risk.services.open_exposure_rebuild`).
    """
    from risk.services import open_exposure_rebuild

    return {"drift": len(open_exposure_rebuild())}
