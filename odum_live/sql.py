"""Querysets compiled to SQL once per database and run again with new parameter values.

Django compiles a queryset's SQL every time it runs. On the trading worker's hot paths (the
journal writer's locked read of an order, once per venue event) the compilation cost more than the
query itself: ~2 ms of a ~4 ms ACCEPTED write on the 2-core benchmark machine
(bench/e2e_latency.py, cProfile of ``order_apply_venue_event``). A :class:`CompiledQuery` builds
the queryset once with *marker* arguments, keeps the SQL and the positions of the markers among its
parameters, and from then on runs that SQL as a ``RawQuerySet`` of the same model with the real
arguments in the markers' places: the same statement, the same model instances (deferred fields and
annotations included, Django's converters applied), without the compiler.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.db.models.query import RawQuerySet


def _as_is(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> Any:
    # SQLite stores UUIDs as 32 hex digits: Django adapts UUID parameters so when compiling.
    return value.hex if isinstance(value, uuid.UUID) else value


#: How a marker may appear among the compiled parameters (as given, or as the database adapted it);
#: the argument that replaces it is adapted the same way.
_ADAPTATIONS = (_as_is, _uuid_hex)


class CompiledQuery:
    """A queryset built by ``build(*markers)``, compiled on first use per database alias.

    Parameters
    ----------
    build : Callable[..., QuerySet]
        Builds the queryset from its arguments. It must use each argument exactly once as a
        parameter value (a filter's right-hand side), so that its marker appears once among the
        compiled parameters.
    markers : tuple
        One distinctive value per argument of ``build``, of the type the filter expects (e.g. a
        string no real argument takes, or a fixed UUID for a UUID column).

    Raises
    ------
    ValueError
        On first use, when a marker is not found exactly once among the compiled parameters.
    """

    def __init__(self, build: Callable[..., QuerySet], *, markers: tuple) -> None:
        self._build = build
        self._markers = markers
        self._compiled: dict[str, tuple[Any, str, list, list]] = {}

    def _compile(self, using: str) -> tuple[Any, str, list, list]:
        queryset = self._build(*self._markers).using(using)
        sql, params = queryset.query.get_compiler(using=using).as_sql()
        params = list(params)
        positions = []
        for marker in self._markers:
            found = []
            for i, param in enumerate(params):
                adapt = next((a for a in _ADAPTATIONS if param == a(marker)), None)
                if adapt is not None:
                    found.append((i, adapt))
            if len(found) != 1:
                raise ValueError(f"marker {marker!r} appears {len(found)} times among the compiled parameters")
            positions.append(found[0])
        return queryset.model, sql, params, positions

    def raw(self, *args: Any, using: str = DEFAULT_DB_ALIAS) -> RawQuerySet:
        """Return the queryset for ``args`` as a ``RawQuerySet`` of the same SQL (compiled once).

        Select-for-update querysets compile only inside a transaction: call it there, as the
        queryset itself would be evaluated.
        """
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        model, sql, params, positions = compiled
        values = list(params)
        for (position, adapt), arg in zip(positions, args, strict=True):
            values[position] = adapt(arg)
        return model._default_manager.db_manager(using).raw(sql, values)

    def one(self, *args: Any, using: str = DEFAULT_DB_ALIAS):
        """Return the only row for ``args``, or None (the queryset must select at most one row)."""
        rows = list(self.raw(*args, using=using))
        if len(rows) > 1:
            raise ValueError(f"{len(rows)} rows where at most one was expected")
        return rows[0] if rows else None

