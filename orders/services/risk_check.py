"""What-if pre-trade risk: route and evaluate an order without recording anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orders.models import Strategy
from orders.services.request import OrderRequest
from orders.services.submit import denial_reason, order_router, risk_engine, routed_listing


@dataclass(frozen=True, slots=True)
class RiskCheckResult:
    """The routing decision and risk result an order *would* get now.

    Attributes
    ----------
    passed : bool
        True when the order would be ROUTED (risk passed and a venue was found).
    status : str
        ``ROUTED`` or ``DENIED``: what :func:`orders.services.submit.order_submit` would record.
    rejection_reason : str
        The reason it would be denied (empty when it would pass).
    risk_result, routing_decision : dict
        ``RiskResult.to_json()`` and ``RoutingDecision.to_json()``.
    """

    passed: bool
    status: str
    rejection_reason: str
    risk_result: dict[str, Any]
    routing_decision: dict[str, Any]


def order_risk_check(*, strategy: Strategy, data: OrderRequest) -> RiskCheckResult:
    """Route ``data`` and run pre-trade risk with ``dry_run=True``: no lock, no velocity usage, no rows.

    Parameters
    ----------
    strategy : Strategy
        The strategy the order would belong to.
    data : OrderRequest
        A validated request (its operation_id is not looked up).

    Returns
    -------
    RiskCheckResult
        The same decision :func:`order_submit` would take at this moment, with the caveat that
        concurrent orders may change velocity / exposure figures before a real submit.
    """
    intent = data.to_intent(strategy_id=strategy.id)
    decision = order_router().route(intent=intent)
    listing, venue = routed_listing(decision)
    risk = risk_engine().evaluate(intent=intent, listing=listing, venue=venue, dry_run=True,
                                  snapshots=decision.snapshots)
    passed = risk.passed and listing is not None
    reason = "" if passed else denial_reason(risk=risk, decision=decision)
    return RiskCheckResult(
        passed=passed,
        status="ROUTED" if passed else "DENIED",
        rejection_reason=reason,
        risk_result=risk.to_json(),
        routing_decision=decision.to_json(),
    )
