"""The kill switch against an order in flight: risk-checked before the halt, committed after its sweep.

Real PostgreSQL, real commits (``transaction=True``): the order's submit runs in a thread of its own
and is held right after its risk check passed (the kill switch still ACTIVE), before its INSERT; the
halt commits and its cancel sweep reads the open orders meanwhile, so the order is not among them.
Only the trading worker's claim then stands between it and the venue. On SQLite the submit's
``BEGIN IMMEDIATE`` transaction would keep the halt waiting until it commits: the race cannot happen.
"""

import threading

import pytest
from django.db import connections

from orders.models import Order, OrderEvent
from orders.services import order_submit, order_venue_submit_claim
from orders.services import submit as submit_module
from risk.models import Scope, TradingState
from risk.services import trading_state_set
from tests.orders.conftest import typed_request


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_halt_order_checked_before_it_and_committed_after_its_sweep_is_canceled_at_the_claim_never_sent(
    tradable, strategy, monkeypatch
):
    # Arrange: the submit pauses between its passed risk check and its INSERT
    engine = submit_module.risk_engine()
    checked, release = threading.Event(), threading.Event()

    class HeldAfterRiskCheck:
        def start(self, **kwargs):
            return engine.start(**kwargs)

        def evaluate(self, **kwargs):
            result = engine.evaluate(**kwargs)
            checked.set()
            release.wait(timeout=30)
            return result

    monkeypatch.setattr(submit_module, "risk_engine", HeldAfterRiskCheck)
    submitted = []

    def submit():
        try:
            submitted.append(order_submit(strategy=strategy, actor="svc", data=typed_request()).order)
        finally:
            connections.close_all()

    thread = threading.Thread(target=submit)
    thread.start()
    assert checked.wait(timeout=30), "the submit never reached its risk check"
    swept = []

    # Act: the halt commits and sweeps while the order is uncommitted; then the order commits, and
    # the worker takes its submit command
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=TradingState.State.HALTED, reason="incident 7",
                      actor="rm-anna", on_halt=swept.append)
    release.set()
    thread.join(timeout=30)
    [order] = submitted
    command = order_venue_submit_claim(order_id=str(order.pk), worker="w1")

    # Assert: the race happened (the order passed risk, committed ROUTED, and the sweep missed it) ...
    assert order.status == "ROUTED" and swept[0].canceled == swept[0].cancel_requested == []
    # ... and the claim refused it: canceled, naming the kill switch, never submitted
    assert command is None
    assert Order.objects.get(pk=order.pk).status == "CANCELED"
    events = list(OrderEvent.objects.filter(order=order).values_list("type", "actor"))
    assert ("CANCELED", "kill-switch:rm-anna") in events and "SUBMITTED" not in {t for t, _ in events}
