"""Replay of recorded market data for paper venues (data side; no NautilusTrader imports).

``records`` (event types), ``sources`` (file readers, venue-config entry point), ``clock``
(merge + wall-clock schedule), ``fill_model`` (paper MARKET-order depth model).
"""
