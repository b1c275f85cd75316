"""Identifiers: time-ordered order ids and the client_order_id derived from them."""

import os
import time
import uuid

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CLIENT_ORDER_ID_PREFIX = "OL"


def uuid7() -> uuid.UUID:
    """Return a UUID version 7 (RFC 9562 §5.7): 48-bit Unix ms timestamp, then random bits.

    Time-ordered ids keep the order table's primary-key index append-mostly and make id order
    match creation order for cursor pagination.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b (62 bits)
    return uuid.UUID(int=value)


def client_order_id_for(order_id: uuid.UUID) -> str:
    """Derive the client_order_id sent to venues from our order id (deterministic, reversible).

    ``"OL"`` + the 128-bit id in base62, zero-padded to 22 characters: 24 characters of
    ``[A-Za-z0-9]``. That fits every venue's rule with room for NautilusTrader's ``-E<n>`` child
    suffix: Binance ``newClientOrderId`` ≤ 36 of ``[.A-Z:/a-z0-9_-]``, Bybit ``orderLinkId`` ≤ 36,
    OKX ``clOrdId`` ≤ 32 alphanumerics, Deribit ``label`` ≤ 64.
    """
    n = order_id.int
    digits = []
    while n:
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    return CLIENT_ORDER_ID_PREFIX + "".join(reversed(digits)).rjust(22, "0")


def order_id_from_client_order_id(client_order_id: str) -> uuid.UUID:
    """Invert :func:`client_order_id_for`.

    Raises
    ------
    ValueError
        When the text is not a client_order_id this service derived.
    """
    if not client_order_id.startswith(CLIENT_ORDER_ID_PREFIX) or len(client_order_id) != 24:
        raise ValueError(f"client_order_id {client_order_id!r} was not derived by odum-live")
    n = 0
    for ch in client_order_id[2:]:
        index = _BASE62.find(ch)
        if index < 0:
            raise ValueError(f"client_order_id {client_order_id!r} has a non-base62 character {ch!r}")
        n = n * 62 + index
    return uuid.UUID(int=n)
