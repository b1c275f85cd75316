"""The TradingNode host: one NautilusTrader ``TradingNode`` per trading-worker process.

- :mod:`venues.node.instruments` — our ``Instrument`` listings as NautilusTrader instruments;
- :mod:`venues.node.paper` — the paper venue's execution client (sandbox + documented depth model);
- :mod:`venues.node.config` — the ``TradingNodeConfig`` built from the enabled ``Venue`` rows;
- :mod:`venues.node.bridge` — the bridge strategy (our commands in, our ``VenueEvent`` out);
- :mod:`venues.node.host` — the node's thread, hand-off, readiness, heartbeat and clean stop.
"""
