"""The order state machine (DESIGN.md, "Order state machine"; FIX / NautilusTrader terms).

::

    PENDING ─▶ DENIED (pre-trade risk)          terminal: DENIED REJECTED CANCELED EXPIRED FILLED
       └─▶ ROUTED ─▶ SUBMITTED ─▶ ACCEPTED ─▶ PARTIALLY_FILLED ─▶ FILLED
                         │            │  └──────────┴─▶ PENDING_CANCEL ─▶ CANCELED
                         └─▶ REJECTED └─▶ EXPIRED

Facts that widen the drawing (NAUTILUS_NOTES.md): sandbox MARKET orders go SUBMITTED → FILLED with
no ACCEPTED, so SUBMITTED may move straight to PARTIALLY_FILLED / FILLED; a cancel may be
requested while SUBMITTED; fills can arrive while PENDING_CANCEL; a rejected cancel returns the
order to where it was — SUBMITTED (the venue never acknowledged it), ACCEPTED, or PARTIALLY_FILLED
(something filled); an order with a cancel pending and nothing filled may still be REJECTED (the
venue or the node refusing it before it was working: NautilusTrader's state machine has
PENDING_CANCEL → REJECTED, nautilus_trader/model/orders/base.pyx). A ROUTED order not yet handed to
a venue can be canceled at once. This table is the only place transitions are decided.
"""

from enum import StrEnum


class OrderStatus(StrEnum):
    """Order statuses in NautilusTrader's terms (DENIED: pre-trade risk; REJECTED: the venue)."""

    PENDING = "PENDING"
    DENIED = "DENIED"
    ROUTED = "ROUTED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    FILLED = "FILLED"


S = OrderStatus

TERMINAL_STATUSES = frozenset({S.DENIED, S.REJECTED, S.CANCELED, S.EXPIRED, S.FILLED})
#: Statuses in which an order may still trade (counts as open exposure).
OPEN_STATUSES = frozenset({S.PENDING, S.ROUTED, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
#: Statuses in which a cancel may be requested.
CANCELABLE_STATUSES = frozenset({S.ROUTED, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED})

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.DENIED, S.ROUTED, S.REJECTED}),
    S.ROUTED: frozenset({S.SUBMITTED, S.CANCELED, S.REJECTED}),
    S.SUBMITTED: frozenset(
        {S.ACCEPTED, S.REJECTED, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}
    ),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}),
    S.PENDING_CANCEL: frozenset(
        {S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.EXPIRED, S.SUBMITTED, S.ACCEPTED, S.REJECTED}
    ),
    **{status: frozenset() for status in TERMINAL_STATUSES},
}

#: Progress rank: a legal transition never lowers it. The statuses of an order at a venue share one
#: rank because a rejected cancel returns PENDING_CANCEL to where it came from (SUBMITTED included).
PROGRESS_RANK: dict[OrderStatus, int] = {
    S.PENDING: 0,
    S.ROUTED: 1,
    S.SUBMITTED: 2,
    S.ACCEPTED: 2,
    S.PARTIALLY_FILLED: 2,
    S.PENDING_CANCEL: 2,
    **{status: 3 for status in TERMINAL_STATUSES},
}

#: Where PENDING_CANCEL may go only while nothing has filled: back to SUBMITTED or ACCEPTED on a
#: rejected cancel (with a fill it returns to PARTIALLY_FILLED), or REJECTED (with a fill the rest of
#: the order is canceled instead: the fills stand).
_UNFILLED_ONLY_FROM_PENDING_CANCEL = frozenset({S.SUBMITTED, S.ACCEPTED, S.REJECTED})


class IllegalTransition(Exception):
    """A status change the state machine does not allow.

    Attributes
    ----------
    source, target : OrderStatus
    """

    def __init__(self, source: str, target: str):
        self.source = OrderStatus(source)
        self.target = OrderStatus(target)
        super().__init__(f"order status cannot move from {self.source} to {self.target}")

    def __reduce__(self):
        # Pickle with both statuses: the default (the message alone) cannot be unpickled, and
        # Celery's prefork pool pickles the exceptions its tasks raise.
        return (type(self), (str(self.source), str(self.target)))


def can_transition(source: str, target: str) -> bool:
    """Return whether ``source`` → ``target`` is in the transition table.

    Parameters
    ----------
    source, target : str
        ``OrderStatus`` values.

    Raises
    ------
    ValueError
        When either is not an ``OrderStatus`` value (a programming error).
    """
    return OrderStatus(target) in TRANSITIONS[OrderStatus(source)]


def cancel_accepted(status: str, *, algorithm_slice: bool) -> bool:
    """Return whether a cancel may be requested for an order in ``status``.

    A status of :data:`CANCELABLE_STATUSES`, except for an execution algorithm's slice still ROUTED:
    the node created it and submits it itself, without the trading worker's claim, so it may
    already be at the venue; it can be canceled once SUBMITTED, or through its parent.

    Parameters
    ----------
    status : str
        An ``OrderStatus`` value.
    algorithm_slice : bool
        Whether the order is a child of an execution algorithm's parent.
    """
    return status in CANCELABLE_STATUSES and not (algorithm_slice and status == S.ROUTED)


def check_transition(source: str, target: str, *, filled_quantity_positive: bool = False) -> None:
    """Raise :class:`IllegalTransition` unless ``source`` → ``target`` is legal.

    PENDING_CANCEL → SUBMITTED / ACCEPTED (a rejected cancel) and PENDING_CANCEL → REJECTED are
    legal only while nothing has filled; with a fill a rejected cancel returns the order to
    PARTIALLY_FILLED instead.

    Parameters
    ----------
    source, target : str
        ``OrderStatus`` values.
    filled_quantity_positive : bool
        Whether the order has any fill (filled quantity > 0 base units).

    Raises
    ------
    IllegalTransition
        When the change is not allowed.
    ValueError
        When either status is not an ``OrderStatus`` value.
    """
    if not can_transition(source, target):
        raise IllegalTransition(source, target)
    if source == S.PENDING_CANCEL and target in _UNFILLED_ONLY_FROM_PENDING_CANCEL and filled_quantity_positive:
        raise IllegalTransition(source, target)
