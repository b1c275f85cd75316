"""The router keeps no tables: its decisions are stored on the order (``Order.routing_decision``)."""
