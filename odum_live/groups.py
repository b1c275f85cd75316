"""Channel-layer group names: the one place they are spelled (CONVENTIONS.md, "Where code goes").

Publishers (the journal writer's on-commit hook) and consumers (WebSocket / HTMX pushes) both take
the names from here, so a rename can never leave one side listening to a group nobody sends to.
Group names must be ASCII letters, digits, ``-``, ``_`` or ``.``, shorter than 100 characters
(Channels' rule); a strategy id is a slug of at most 64 characters, so every name below fits.
"""

#: Every order change, for viewers allowed to see all strategies.
ORDERS_GROUP = "orders"

#: Message type of an order change (``orders.services.publish``): ``{"type": ORDERS_UPDATED,
#: "order_id": "<uuid>", "stream": <group>, "seq": <int>, "strategy_id": "<id>", "event_ids": [..],
#: "fill_ids": [..]}`` — ids and the change's number in the group's stream, never data. Consumers
#: re-read the order through a selector. Each group is one numbered stream.
ORDERS_UPDATED = "orders.updated"


def strategy_group(strategy_id: str) -> str:
    """Return the group that receives the order changes of one strategy.

    Parameters
    ----------
    strategy_id : str
        ``orders.Strategy`` primary key (a slug, ≤ 64 characters).

    Returns
    -------
    str
        ``"strategy.<strategy_id>"``.

    Raises
    ------
    ValueError
        When ``strategy_id`` is empty.
    """
    if not strategy_id:
        raise ValueError("strategy_id: must not be empty")
    return f"strategy.{strategy_id}"


#: Position marks changed (``positions.services.positions_publish_updated``, rate-bounded); fills
#: reach position pages through ``orders.updated``.
POSITIONS_GROUP = "positions"

#: Message type sent to :data:`POSITIONS_GROUP`: ``{"type": POSITIONS_UPDATED}`` (no data; re-read).
POSITIONS_UPDATED = "positions.updated"

#: Message type of a change of what one user may see or do (``orders.services.access``): a token of
#: theirs revoked, their groups, permissions or strategies changed, their account saved or deleted, a
#: logout. ``{"type": ACCESS_CHANGED, "group": user_group(<id>)}`` — no data: each of the user's open
#: WebSocket connections checks its credentials and scope again (``orders.consumers``,
#: ``odum_live.live``). A logout adds ``"ended_session": <odum_live.live.session_fingerprint>`` of the
#: session it ends (sent before Django flushes it): connections on that session close without reading it.
ACCESS_CHANGED = "access.changed"


def user_group(user_id: int) -> str:
    """Return the group of one user's open WebSocket connections (``"user.<id>"``).

    Parameters
    ----------
    user_id : int
        The user's primary key.
    """
    return f"user.{int(user_id)}"
