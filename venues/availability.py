"""Which venues can trade in this release: the one owner of that rule.

A venue trades through one of two paths (``Venue.kind``, DESIGN.md "Venues"):

- ``NAUTILUS``: the TradingNode, with NautilusTrader's adapter or the paper sandbox. Such a venue is
  available; what keeps one particular venue from working (credentials unset, replay data missing,
  an adapter name the node has no live mode for) is found by the node's plan
  (:func:`venues.node.config.node_plan`) and reported per venue in health and on ``/status``.
- ``EXTERNAL_SDK``: an adapter of our own on the venue's SDK, named by ``Venue.adapter`` and
  looked up in :data:`EXTERNAL_SDK_ADAPTERS`. DESIGN.md plans ``deribit`` and
  ``interactive_brokers`` (``venues/adapters/``), but none ships in this release: the registry is
  empty, so every ``EXTERNAL_SDK`` venue is unavailable — the trading node does not host it, nothing
  else can send it an order, and it never gets market data.

The router treats an unavailable venue as ineligible with :func:`venue_unavailable_reason` (a
named order is denied with it, ``ANY`` skips the venue naming it); health, ``/status`` and
``manage.py status`` report it; the admin refuses to enable it.
"""

from __future__ import annotations

from venues.models import Venue

#: Adapter names (``Venue.adapter``) of the external SDK adapters this release ships: none yet.
EXTERNAL_SDK_ADAPTERS: frozenset[str] = frozenset()


def venue_unavailable_reason(*, kind: str, adapter: str) -> str:
    """Return why a venue of ``kind`` with ``adapter`` cannot trade in this release, or ``""`` when it can.

    Parameters
    ----------
    kind : str
        ``Venue.kind``: ``NAUTILUS`` or ``EXTERNAL_SDK``.
    adapter : str
        ``Venue.adapter``, e.g. ``binance_spot``, ``deribit``.

    Returns
    -------
    str
        ``""`` for every ``NAUTILUS`` venue (the node plan reports its own problems) and for an
        ``EXTERNAL_SDK`` venue whose adapter is in :data:`EXTERNAL_SDK_ADAPTERS`; otherwise one
        sentence naming the adapter and the kind, e.g. ``"adapter 'deribit' (EXTERNAL_SDK) is not
        available in this release"``. Callers add the venue code where the context lacks it.
    """
    if kind == Venue.Kind.NAUTILUS:
        return ""
    if kind == Venue.Kind.EXTERNAL_SDK:
        return "" if adapter in EXTERNAL_SDK_ADAPTERS else \
            f"adapter {adapter!r} ({kind}) is not available in this release"
    return f"kind {kind!r} is not a venue kind of this release (NAUTILUS or EXTERNAL_SDK)"
