"""The garbage collector and the long-lived heap of a server process.

A Django process holds a large heap that lives as long as the process (modules, models, URL
patterns, serializers — and in the trading worker NautilusTrader's node with its cache and
instruments). CPython's full (generation 2) collection walks all of it, stopping every thread of
the process while it does: ~75 ms in a gunicorn worker and ~110 ms in the trading worker on the
2-core benchmark machine, measured with ``gc.callbacks`` during bench/e2e_latency.py, each such
stop landing on whatever order was in flight (a p99 of the end-to-end latency). Frozen
(``gc.freeze``, CPython ≥ 3.7), that heap is left out of every later collection, which then walks
only what was allocated since. What the frozen heap holds is never collected: it is kept for the
life of the process anyway.
"""

from __future__ import annotations

import gc


def freeze_startup_heap(*, warm_urls: bool = False) -> int:
    """Collect once, then move every object alive now to the collector's permanent generation.

    Call once the process has loaded what it keeps (after Django's set-up; in the trading worker
    after the node has started).

    Parameters
    ----------
    warm_urls : bool
        Load the URL configuration first (every view, serializer and schema module it imports),
        which Django otherwise does on the first request, after the freeze.

    Returns
    -------
    int
        Objects in the permanent generation afterwards (``gc.get_freeze_count()``).
    """
    if warm_urls:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - imports the URL modules and their views
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
