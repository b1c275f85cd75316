"""The order state machine (orders/state.py, Order.transition_to) under random event sequences.

The rule-based machine drives an unsaved ``Order`` through random status events and fills and
checks every step against an *independent* statement of the rules, written here from DESIGN.md
("Order state machine") and NAUTILUS_NOTES.md (SUBMITTED may fill without ACCEPTED; a cancel may be
requested while SUBMITTED; fills may arrive while PENDING_CANCEL; a rejected cancel returns to
SUBMITTED or ACCEPTED only with nothing filled, else to PARTIALLY_FILLED; an order pending a cancel
may be REJECTED only with nothing filled, as NautilusTrader's order state machine allows; a ROUTED
order may be canceled at once) rather than against the table it tests.
"""

import pickle
from decimal import Decimal

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orders.models import Order
from orders.state import (
    CANCELABLE_STATUSES,
    OPEN_STATUSES,
    PROGRESS_RANK,
    TERMINAL_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    OrderStatus,
    can_transition,
    check_transition,
)
from tests.orders.factories import OrderFactory

S = OrderStatus
ALL = list(OrderStatus)

#: The legal edges, restated from the design documents (not copied from orders/state.py).
SPEC_EDGES = {
    (S.PENDING, S.DENIED), (S.PENDING, S.ROUTED), (S.PENDING, S.REJECTED),
    (S.ROUTED, S.SUBMITTED), (S.ROUTED, S.CANCELED), (S.ROUTED, S.REJECTED),
    (S.SUBMITTED, S.ACCEPTED), (S.SUBMITTED, S.REJECTED), (S.SUBMITTED, S.PARTIALLY_FILLED),
    (S.SUBMITTED, S.FILLED), (S.SUBMITTED, S.PENDING_CANCEL), (S.SUBMITTED, S.CANCELED),
    (S.SUBMITTED, S.EXPIRED),
    (S.ACCEPTED, S.PARTIALLY_FILLED), (S.ACCEPTED, S.FILLED), (S.ACCEPTED, S.PENDING_CANCEL),
    (S.ACCEPTED, S.CANCELED), (S.ACCEPTED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.PENDING_CANCEL), (S.PARTIALLY_FILLED, S.CANCELED), (S.PARTIALLY_FILLED, S.EXPIRED),
    (S.PENDING_CANCEL, S.CANCELED), (S.PENDING_CANCEL, S.PARTIALLY_FILLED), (S.PENDING_CANCEL, S.FILLED),
    (S.PENDING_CANCEL, S.EXPIRED), (S.PENDING_CANCEL, S.ACCEPTED), (S.PENDING_CANCEL, S.SUBMITTED),
    (S.PENDING_CANCEL, S.REJECTED),
}
SPEC_TERMINAL = {S.DENIED, S.REJECTED, S.CANCELED, S.EXPIRED, S.FILLED}


def spec_allows(source, target, *, filled):
    if (source, target) not in SPEC_EDGES:
        return False
    return not (source is S.PENDING_CANCEL and target in (S.SUBMITTED, S.ACCEPTED, S.REJECTED) and filled)


class OrderLifecycle(RuleBasedStateMachine):
    """Random venue events and fills on one order; status must follow the rules at every step."""

    def __init__(self):
        super().__init__()
        self.order = Order(quantity=Decimal("1"), filled_quantity=Decimal("0"), status=S.PENDING)
        self.history = [S.PENDING]
        self.legal_moves = 0

    @rule(new_status=st.sampled_from(ALL))
    def status_event(self, new_status):
        # Any event, legal or not: late, duplicate and out-of-order venue reports included.
        self._apply(new_status)

    def _apply(self, target):
        source = OrderStatus(self.order.status)
        filled = self.order.filled_quantity > 0
        legal = spec_allows(source, target, filled=filled)
        if legal:
            self.order.transition_to(target)
            assert self.order.status == target
            self.history.append(target)
            self.legal_moves += 1
        else:
            with pytest.raises(IllegalTransition) as error:
                self.order.transition_to(target)
            assert (error.value.source, error.value.target) == (source, target)
            assert self.order.status == source  # refused: nothing changed
        assert can_transition(source, target) == ((source, target) in SPEC_EDGES)

    @precondition(lambda self: self.order.status not in SPEC_TERMINAL)
    @rule(data=st.data())
    def working_event(self, data):
        # A legal move that keeps the order working, so sequences reach the deep states
        # (PENDING_CANCEL after fills) instead of mostly ending at DENIED.
        source = OrderStatus(self.order.status)
        filled = self.order.filled_quantity > 0
        choices = sorted(
            t for (s, t) in SPEC_EDGES
            if s is source and t not in SPEC_TERMINAL and spec_allows(source, t, filled=filled)
        )
        if choices:
            self._apply(data.draw(st.sampled_from(choices), label="working status"))

    @precondition(lambda self: self.order.status in (S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL))
    @rule(fraction=st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("1")]))
    def venue_fill(self, fraction):
        # A fill the venue reports: filled quantity grows, status follows by the event the venue sends.
        leaves = self.order.quantity - self.order.filled_quantity
        quantity = min(leaves, self.order.quantity * fraction)
        if quantity <= 0:
            return
        self.order.filled_quantity += quantity
        target = S.FILLED if self.order.filled_quantity == self.order.quantity else S.PARTIALLY_FILLED
        self._apply(target)

    @precondition(lambda self: self.order.status == S.PENDING_CANCEL)
    @rule(acknowledged=st.booleans())
    def cancel_rejected(self, acknowledged):
        # The venue refuses the cancel: back to ACCEPTED (or SUBMITTED, never acknowledged) with
        # nothing filled, else PARTIALLY_FILLED.
        filled = self.order.filled_quantity > 0
        unfilled = S.ACCEPTED if acknowledged else S.SUBMITTED
        back = S.PARTIALLY_FILLED if filled else unfilled
        if filled:
            with pytest.raises(IllegalTransition):
                self.order.transition_to(unfilled)
            assert self.order.status == S.PENDING_CANCEL
        self._apply(back)
        assert self.order.status == back

    @invariant()
    def status_is_known(self):
        assert OrderStatus(self.order.status) in ALL

    @invariant()
    def progress_never_goes_back(self):
        ranks = [PROGRESS_RANK[s] for s in self.history]
        assert ranks == sorted(ranks)

    @invariant()
    def terminal_status_is_final(self):
        terminal_at = next((i for i, s in enumerate(self.history) if s in SPEC_TERMINAL), None)
        if terminal_at is not None:
            assert len(self.history) == terminal_at + 1

    @invariant()
    def filled_never_exceeds_quantity(self):
        assert Decimal("0") <= self.order.filled_quantity <= self.order.quantity


OrderLifecycle.TestCase.settings = hypothesis_settings(max_examples=400, stateful_step_count=40, deadline=None)
test_order_lifecycle_random_events_follow_the_state_machine = OrderLifecycle.TestCase


# -- the table against the written rules ----------------------------------------------------------
def test_transition_table_equals_the_design_edges():
    # Act
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}

    # Assert
    assert table == SPEC_EDGES and set(TRANSITIONS) == set(ALL)


def test_status_sets_partition_by_finality():
    # Assert
    assert TERMINAL_STATUSES == SPEC_TERMINAL
    assert OPEN_STATUSES == set(ALL) - SPEC_TERMINAL
    assert CANCELABLE_STATUSES <= OPEN_STATUSES
    for status in TERMINAL_STATUSES:
        assert not TRANSITIONS[status]


def test_every_cancelable_status_can_reach_cancel():
    # Assert
    for status in CANCELABLE_STATUSES:
        assert can_transition(status, S.CANCELED) or can_transition(status, S.PENDING_CANCEL)


def test_every_legal_transition_keeps_or_raises_progress_rank():
    # Assert
    for source, target in SPEC_EDGES:
        assert PROGRESS_RANK[target] >= PROGRESS_RANK[source], (source, target)


# -- named cases ----------------------------------------------------------------------------------
def test_transition_submitted_to_filled_without_accepted_is_legal():
    # Arrange: sandbox MARKET orders (NAUTILUS_NOTES.md)
    order = Order(quantity=Decimal("1"), status=S.SUBMITTED)

    # Act
    order.transition_to(S.FILLED)

    # Assert
    assert order.status == S.FILLED


def test_transition_pending_cancel_to_accepted_with_nothing_filled_is_legal():
    # Arrange
    order = Order(quantity=Decimal("1"), filled_quantity=Decimal("0"), status=S.PENDING_CANCEL)

    # Act
    order.transition_to(S.ACCEPTED)

    # Assert
    assert order.status == S.ACCEPTED


def test_transition_pending_cancel_to_accepted_after_a_fill_raises_and_keeps_status():
    # Arrange
    order = Order(quantity=Decimal("1"), filled_quantity=Decimal("0.4"), status=S.PENDING_CANCEL)

    # Act
    with pytest.raises(IllegalTransition) as error:
        order.transition_to(S.ACCEPTED)

    # Assert
    assert order.status == S.PENDING_CANCEL
    assert str(error.value) == "order status cannot move from PENDING_CANCEL to ACCEPTED"
    check_transition(S.PENDING_CANCEL, S.PARTIALLY_FILLED, filled_quantity_positive=True)


@pytest.mark.parametrize("terminal", sorted(SPEC_TERMINAL))
def test_transition_from_terminal_status_always_raises(terminal):
    # Act / Assert
    for target in ALL:
        with pytest.raises(IllegalTransition):
            check_transition(terminal, target)


def test_illegal_transition_survives_pickling():
    # Arrange
    error = IllegalTransition("FILLED", "ACCEPTED")

    # Act
    copy = pickle.loads(pickle.dumps(error))

    # Assert
    assert (copy.source, copy.target, str(copy)) == (S.FILLED, S.ACCEPTED, str(error))


def test_check_transition_unknown_status_is_a_programming_error():
    # Act / Assert
    with pytest.raises(ValueError):
        check_transition("PENDING", "LOST")


@pytest.mark.django_db
def test_transition_to_on_saved_order_persists_legal_and_refuses_illegal():
    # Arrange
    order = OrderFactory(status=S.ROUTED)

    # Act
    order.transition_to(S.SUBMITTED)
    order.save(update_fields=["status"])
    with pytest.raises(IllegalTransition):
        order.transition_to(S.ROUTED)
    order.refresh_from_db()

    # Assert
    assert order.status == S.SUBMITTED
