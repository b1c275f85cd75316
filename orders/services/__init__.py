"""Order services: every write to orders goes through these functions (CONVENTIONS.md).

- :mod:`.request` — validate and fingerprint an order message (:class:`OrderRequest`).
- :mod:`.submit` — :func:`order_submit` (idempotency, routing, pre-trade risk, the order row).
- :mod:`.cancel` — :func:`order_cancel`.
- :mod:`.dispatch` — hand-off to the trading worker and the outbox sweeper.
- :mod:`.venue_commands` — the trading worker's claim of commands (ROUTED → SUBMITTED) and hand-off failures.
- :mod:`.venue_events` — :func:`order_apply_venue_event` (the journal writer's one transaction per venue event).
- :mod:`.risk_check` — what-if pre-trade risk (writes nothing).
"""

from orders.services.cancel import OrderNotCancelable, order_cancel
from orders.services.dispatch import (
    RedispatchReport,
    order_dispatch_cancel,
    order_dispatch_submit,
    orders_redispatch_stale,
)
from orders.services.request import OrderRequest, OrderRequestInvalid, order_request_build
from orders.services.risk_check import RiskCheckResult, order_risk_check
from orders.services.submit import IdempotencyConflict, StrategyDisabled, SubmitResult, order_submit
from orders.services.venue_commands import (
    order_venue_cancel_claim,
    order_venue_cancel_failed,
    order_venue_submit_claim,
    order_venue_submit_failed,
)
from orders.services.venue_events import AppliedEvent, VenueEventError, order_apply_venue_event

__all__ = [
    "AppliedEvent",
    "IdempotencyConflict",
    "OrderNotCancelable",
    "OrderRequest",
    "OrderRequestInvalid",
    "RedispatchReport",
    "RiskCheckResult",
    "StrategyDisabled",
    "SubmitResult",
    "VenueEventError",
    "order_apply_venue_event",
    "order_cancel",
    "order_dispatch_cancel",
    "order_dispatch_submit",
    "order_request_build",
    "order_risk_check",
    "order_submit",
    "order_venue_cancel_claim",
    "order_venue_cancel_failed",
    "order_venue_submit_claim",
    "order_venue_submit_failed",
    "orders_redispatch_stale",
]
