"""Replay of recorded market data for paper venues.

``records`` (event types), ``sources`` (file readers, venue-config entry point), ``clock``
(merge + wall-clock schedule), ``fill_model`` (paper MARKET-order depth model): no NautilusTrader
imports. ``client`` is the node boundary: the NautilusTrader data client that publishes the
records as ``QuoteTick`` / ``TradeTick`` / ``OrderBookDeltas`` / ``OrderBookDepth10`` / ``Bar``.
"""
