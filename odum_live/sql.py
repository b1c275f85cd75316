"""SQL on the hot paths: querysets compiled once, statements sent now and read later, pipelines.

**Compiled querysets.** Django compiles a queryset's SQL every time it runs. On the trading
worker's hot paths (the journal writer's locked read of an order, once per venue event) the
compilation cost more than the query itself: ~2 ms of a ~4 ms ACCEPTED write on the 2-core
benchmark machine (bench/e2e_latency.py, cProfile of ``order_apply_venue_event``). A
:class:`CompiledQuery` builds the queryset once with *marker* arguments, keeps the SQL and the
positions of the markers among its parameters, and from then on runs that SQL with the real
arguments in the markers' places and turns its rows into model instances as Django's
``ModelIterable`` does (deferred fields and annotations included, Django's converters applied): the
same statement, the same instances, without the compiler.

**Sent statements and pipelines.** :func:`send_query`, :func:`send_update` and :func:`send_insert`
execute a statement without reading its result. Outside a psycopg pipeline that is plain
execution; inside one (:func:`pipeline`, PostgreSQL only) the statement travels with the ones sent
after it, up to the first whose rows are read — or to the pipeline's end, or the COMMIT when the
pipeline encloses the transaction. Each statement still runs after the one before it, in order, in
the same transaction. Nothing of their results is needed to go on: an UPDATE by primary key of a
row the caller holds locked, an INSERT whose ids are either set beforehand or read later. A
database error of a sent statement surfaces at the next read, the pipeline's end or the COMMIT, as
Django's exception, and the transaction rolls back whole.

**Query conversion.** psycopg turns a query's ``%s`` placeholders into PostgreSQL's ``$n`` on every
execution and keeps the result only for queries of at most ``MAX_CACHED_STATEMENT_PARAMS`` (50)
parameters, so that bulk statements of ever-changing sizes do not flush its cache. The order's
INSERT has more (one per column): re-splitting it cost ~250 µs per order against ~12 µs from the
cache (psycopg 3.3 ``PostgresQuery.convert``, benchmark machine). Importing this module raises the
bound to :data:`PSYCOPG_CACHED_PARAMS`, which covers every statement built here; psycopg's cache
stays bounded (an LRU of 128 conversions).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators
from django.db.models.sql import InsertQuery
from django.db.models.sql.compiler import SQLInsertCompiler

#: Queries with up to this many parameters keep their conversion in psycopg's cache (see above).
PSYCOPG_CACHED_PARAMS = 128


def _cache_wide_statements() -> None:
    try:
        from psycopg import _queries
    except ImportError:  # SQLite-only installs
        return
    # A private module constant of psycopg (3.3, pinned in requirements/base.txt), read at each
    # conversion; tests/odum_live/test_sql.py fails if a psycopg upgrade stops it caching.
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, PSYCOPG_CACHED_PARAMS)


_cache_wide_statements()


def _as_is(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> Any:
    # SQLite stores UUIDs as 32 hex digits: Django adapts UUID parameters so when compiling.
    return value.hex if isinstance(value, uuid.UUID) else value


#: How a marker may appear among the compiled parameters (as given, or as the database adapted it);
#: the argument that replaces it is adapted the same way.
_ADAPTATIONS = (_as_is, _uuid_hex)


@dataclass(frozen=True, slots=True)
class _Compiled:
    # What a queryset compiled to, and how its rows become instances (as Django's ModelIterable).
    model: Any
    sql: str
    params: list
    positions: list  # (index among params, adaptation) per marker
    fields: slice  # the model's columns in the select
    attnames: list[str]
    annotations: dict[str, int]  # annotation name → column
    converters: list  # (column, converter functions, expression): see _converted
    populators: list  # Django's RelatedPopulator per select_related relation (stateless, reused)


class CompiledQuery:
    """A queryset built by ``build(*markers)``, compiled on first use per database alias.

    Parameters
    ----------
    build : Callable[..., QuerySet]
        Builds the queryset from its arguments: a plain model queryset (``only`` / ``defer`` /
        ``annotate`` / ``select_related`` / ``select_for_update`` allowed; no ``values``). It
        must use each argument exactly once as a parameter value (a filter's right-hand side), so
        that its marker appears once among the compiled parameters.
    markers : tuple
        One distinctive value per argument of ``build``, of the type the filter expects (e.g. a
        string no real argument takes, or a fixed UUID for a UUID column).

    Raises
    ------
    ValueError
        On first use, when a marker is not found exactly once among the compiled parameters, or
        the queryset is not a plain model queryset.
    """

    def __init__(self, build: Callable[..., QuerySet], *, markers: tuple) -> None:
        self._build = build
        self._markers = markers
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, using: str) -> _Compiled:
        queryset = self._build(*self._markers).using(using)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
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
        info = compiler.klass_info
        if info is None or queryset._iterable_class is not ModelIterable:
            raise ValueError("CompiledQuery needs a plain model queryset (no values or raw)")
        start, end = info["select_fields"][0], info["select_fields"][-1] + 1
        select = compiler.select
        converters = compiler.get_converters([column for column, _, _ in select[:compiler.col_count]])
        return _Compiled(
            model=queryset.model, sql=sql, params=params, positions=positions, fields=slice(start, end),
            attnames=[column.target.attname for column, _, _ in select[start:end]],
            annotations=dict(compiler.annotation_col_map),
            converters=[(column, functions, expression) for column, (functions, expression) in converters.items()],
            populators=get_related_populators(info, select, using),
        )

    def _get(self, using: str) -> _Compiled:
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        return compiled

    def send(self, *args: Any, using: str = DEFAULT_DB_ALIAS) -> SentRows:
        """Execute the query for ``args`` now and return its rows unread (:class:`SentRows`).

        Select-for-update querysets compile only inside a transaction: call it there, as the
        queryset itself would be evaluated. In a pipeline (:func:`pipeline`) the query travels
        with the statements sent after it, up to the first read.
        """
        compiled = self._get(using)
        values = list(compiled.params)
        for (position, adapt), arg in zip(compiled.positions, args, strict=True):
            values[position] = adapt(arg)
        return SentRows(compiled, send_query(compiled.sql, values, using=using), using)

    def one(self, *args: Any, using: str = DEFAULT_DB_ALIAS):
        """Return the only row for ``args``, or None (the queryset must select at most one row)."""
        return self.send(*args, using=using).one()


def _converted(row: Sequence, converters: list, connection) -> Sequence:
    # ``row`` with Django's converters applied, as the SQL compiler applies them: ``converters``
    # lists (column index, converter functions, expression) for the columns that have any.
    if not converters:
        return row
    row = list(row)
    for column, functions, expression in converters:
        value = row[column]
        for function in functions:
            value = function(value, expression, connection)
        row[column] = value
    return row


class SentRows:
    """The rows of a :meth:`CompiledQuery.send`, read once with :meth:`all` or :meth:`one`."""

    def __init__(self, compiled: _Compiled, sent: SentQuery, using: str) -> None:
        self._compiled, self._sent, self._using = compiled, sent, using

    def all(self) -> list:
        """Return the rows as model instances (reading them, which ends a pipeline's batch)."""
        compiled, connection = self._compiled, connections[self._using]
        instances = []
        for row in self._sent.fetchall():
            row = _converted(row, compiled.converters, connection)
            instance = compiled.model.from_db(self._using, compiled.attnames, row[compiled.fields])
            for populator in compiled.populators:
                populator.populate(row, instance)
            for name, column in compiled.annotations.items():
                setattr(instance, name, row[column])
            instances.append(instance)
        return instances

    def one(self):
        """Return the only row, or None (raises ``ValueError`` for more than one)."""
        rows = self.all()
        if len(rows) > 1:
            raise ValueError(f"{len(rows)} rows where at most one was expected")
        return rows[0] if rows else None


# --- statements sent now, read later ----------------------------------------------------------------

class SentQuery:
    """A statement sent on a connection whose rows are read later (:func:`send_query`); read once.

    Inside a psycopg pipeline the statement travels with the ones sent after it, up to the first
    whose rows are read; elsewhere it has simply run.
    """

    def __init__(self, cursor, kept: _KeptCursors | None) -> None:
        self._cursor, self._kept = cursor, kept

    def fetchall(self) -> list[tuple]:
        """Return the rows (Django's database errors, as from ``execute``); the cursor is then
        closed, or kept for the connection's next statement (PostgreSQL)."""
        try:
            rows = self._cursor.fetchall()
        except BaseException:
            self._cursor.close()
            raise
        if self._kept is not None:
            self._kept.give_back(self._cursor.cursor)
        else:
            self._cursor.close()
        return rows


class _KeptCursors:
    # psycopg cursors of one PostgreSQL connection, kept between statements. A new cursor costs
    # Django's wrapper, psycopg's cursor and its copy of the connection's adapters, ~30 µs of CPU
    # on the benchmark machine; a fill's write sends twelve statements, an order's about as many.
    # Interleaved in one process: a FILLED write 3.83 -> 3.46 and 4.21 -> 3.67 ms of CPU (p50), an
    # order 14.51 -> 14.23. ``readable`` cursors go back only once their rows are read, so none is
    # reused with a result still pending in a pipeline (psycopg would set the older result on it
    # and a read would return it). Statements whose results nobody reads share one ``write``
    # cursor: what it holds is never looked at.
    __slots__ = ("connection", "readable", "write")

    def __init__(self, connection) -> None:
        self.connection = connection
        self.readable: list = []
        self.write = None

    def give_back(self, raw) -> None:
        if raw.connection is self.connection and not raw.closed and len(self.readable) < 16:
            self.readable.append(raw)


def _kept_cursors(conn) -> _KeptCursors | None:
    # The kept cursors of a connected PostgreSQL connection ``conn`` (a new set after reconnecting).
    if conn.vendor != "postgresql":
        return None
    conn.ensure_connection()
    kept = conn.__dict__.get("_odum_kept_cursors")
    if kept is None or kept.connection is not conn.connection:
        kept = conn.__dict__["_odum_kept_cursors"] = _KeptCursors(conn.connection)
    return kept


def send_query(sql: str, params: Sequence, *, using: str = DEFAULT_DB_ALIAS) -> SentQuery:
    """Execute ``sql`` on the connection ``using`` and return its rows unread (:class:`SentQuery`)."""
    conn = connections[using]
    kept = _kept_cursors(conn)
    if kept is None:
        cursor = conn.cursor()
    else:
        # Wrapped as Django wraps a new cursor (its _prepare_cursor: thread check, query logging).
        cursor = conn._prepare_cursor(kept.readable.pop() if kept.readable else conn.create_cursor())
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise
    return SentQuery(cursor, kept)


def send_statement(sql: str, params: Sequence, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Execute ``sql`` (a statement without rows) and read nothing of its result, not even the row count."""
    conn = connections[using]
    kept = _kept_cursors(conn)
    if kept is None:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
        return
    if kept.write is None or kept.write.closed:
        kept.write = conn.create_cursor()
    conn._prepare_cursor(kept.write).execute(sql, params)


def send_update(instance: Model, fields: Sequence[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Write ``fields`` of a saved ``instance`` by primary key, as ``save(update_fields=…)`` would.

    The fields' ``pre_save`` runs first (``auto_now`` stamps ``updated_at``), so the instance holds
    what was written. Unlike ``save`` it reads no row count: call it only for a row this
    transaction holds locked (``SELECT … FOR UPDATE``), which therefore exists.

    Parameters
    ----------
    instance : Model
        A row read from the database (primary key set).
    fields : Sequence[str]
        Names of concrete, non-primary-key fields.
    """
    opts, conn = instance._meta, connections[using]
    key = (type(instance), tuple(fields), using)
    sql = _UPDATE_SQL.get(key)
    if sql is None:
        quote = conn.ops.quote_name
        assignments = ", ".join(f"{quote(opts.get_field(name).column)} = %s" for name in fields)
        sql = _UPDATE_SQL[key] = f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {quote(opts.pk.column)} = %s"
    params = []
    for name in fields:
        field = opts.get_field(name)
        params.append(field.get_db_prep_save(field.pre_save(instance, False), connection=conn))
    params.append(opts.pk.get_db_prep_value(instance.pk, conn))
    send_statement(sql, params, using=using)


_UPDATE_SQL: dict[tuple, str] = {}


#: INSERT statements by shape (model, primary key given, ids read, rows, database): (sql, fields),
#: or False for a shape whose parameters only the compiler prepares.
_INSERT_SQL: dict[tuple, tuple[str, list] | bool] = {}


def _insert_params(objs: Sequence[Model], fields: list, connection, *, add: bool) -> list:
    # The parameters of an INSERT of ``objs`` as the compiler prepares them; ``add`` runs each
    # field's pre_save (auto_now_add), which the compiler otherwise ran.
    def value(obj, field):
        raw = field.pre_save(obj, True) if add else getattr(obj, field.attname)
        return field.get_db_prep_save(raw, connection=connection)

    return [value(obj, field) for obj in objs for field in fields]


def send_insert(objs: Sequence[Model], *, using: str = DEFAULT_DB_ALIAS, read_ids: bool = True):
    """INSERT unsaved instances of one model in one statement, as ``bulk_create`` would.

    With ``read_ids`` (and a database-generated primary key) the statement returns the new ids
    and the function returned here sets them on ``objs`` when called (once, after the rows are
    wanted); without, nothing is returned by the database and None is returned here. An instance
    whose primary key is already set (e.g. from the sequence) is inserted with it.

    Returns
    -------
    Callable[[], None] | None
        Reads the ids into ``objs`` (``read_ids``), else None.
    """
    if not objs:
        return None
    model = type(objs[0])
    opts = model._meta
    has_pk = objs[0].pk is not None
    returning = list(opts.db_returning_fields) if read_ids and not has_pk else []
    shape = (model, has_pk, bool(returning), len(objs), using)
    cached = _INSERT_SQL.get(shape)
    if cached:  # the statement of this shape, its parameters prepared as the compiler prepares them
        sql, fields = cached
        params = _insert_params(objs, fields, connections[using], add=True)
    else:
        fields = [f for f in opts.concrete_fields if not f.generated and (has_pk or f is not opts.auto_field)]
        query = InsertQuery(model)  # its compiler runs each field's pre_save (auto_now_add) as bulk_create's does
        query.insert_values(fields, objs)
        # Django's generic compiler: several rows as ``VALUES (…), (…)``. The PostgreSQL backend's
        # own compiler sends them as one array per column (``SELECT * FROM UNNEST(…)``) to spare
        # the server planning a long statement, which a prepared statement plans once anyway,
        # while psycopg's adaptation of the arrays cost ~180 µs more per 3-row INSERT than the
        # same values one by one (psycopg 3.3 ``PostgresQuery.convert``, benchmark machine).
        compiler = SQLInsertCompiler(query, connections[using], using)
        compiler.returning_fields = returning or None
        [(sql, params)] = compiler.as_sql()
        if cached is None:
            # Kept for the next statements of this shape only when preparing the parameters
            # directly gives exactly what the compiler gave (no expression, no custom placeholder).
            direct = _insert_params(objs, fields, connections[using], add=False)
            same = len(direct) == len(params) and all(
                type(a) is type(b) and repr(a) == repr(b) for a, b in zip(direct, params, strict=True))
            _INSERT_SQL[shape] = (sql, fields) if same else False
    if not returning:
        send_statement(sql, params, using=using)
        for obj in objs:
            obj._state.adding, obj._state.db = False, using
        return None
    sent = send_query(sql, params, using=using)

    def read() -> None:
        for obj, row in zip(objs, sent.fetchall(), strict=True):
            for field, value in zip(returning, row, strict=True):
                setattr(obj, field.attname, value)
            obj._state.adding, obj._state.db = False, using

    return read


def instances_from_rows(model: type[Model], names: Sequence[str], rows: Sequence[Sequence], *,
                        using: str = DEFAULT_DB_ALIAS) -> list:
    """Return ``model`` instances from rows of the columns of fields ``names`` (e.g. an ``UPDATE … RETURNING``).

    Django's converters of each field (backend and field: JSON decoding, SQLite decimals …) are
    applied, as a queryset would; the other fields are deferred.
    """
    connection = connections[using]
    key = (model, tuple(names), using)
    plan = _ROW_PLANS.get(key)
    if plan is None:
        fields = [model._meta.get_field(name) for name in names]
        converters = []
        for i, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            functions = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if functions:
                converters.append((i, functions, column))
        # Model.from_db takes the values in the model's field order, whatever the order of the names.
        concrete = [f.attname for f in model._meta.concrete_fields]
        order = sorted(range(len(fields)), key=lambda i: concrete.index(fields[i].attname))
        plan = _ROW_PLANS[key] = ([fields[i].attname for i in order], order, converters)
    attnames, order, converters = plan
    instances = []
    for row in rows:
        row = _converted(row, converters, connection)
        instances.append(model.from_db(using, attnames, [row[i] for i in order]))
    return instances


_ROW_PLANS: dict[tuple, tuple[list[str], list[int], list]] = {}


def next_id(model: type[Model], *, using: str = DEFAULT_DB_ALIAS) -> SentQuery:
    """Send ``nextval`` of ``model``'s primary-key sequence (PostgreSQL); read it with ``fetchall()[0][0]``.

    An id taken so can be written into other rows of the same transaction before the row itself
    is inserted with it (:func:`send_insert`), sparing a round trip for an ``INSERT … RETURNING``.
    """
    table, column = model._meta.db_table, model._meta.pk.column
    return send_query("SELECT nextval(pg_get_serial_sequence(%s, %s))", [table, column], using=using)


def in_pipeline(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Return whether the connection ``using`` is in psycopg pipeline mode."""
    conn = connections[using]
    if conn.vendor != "postgresql" or conn.connection is None:
        return False
    from psycopg import pq

    return conn.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF


@contextlib.contextmanager
def pipeline(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    """Run the block in psycopg pipeline mode on PostgreSQL; yield whether it is pipelined.

    Enclosing ``transaction.atomic()`` in it sends the COMMIT with the last statements sent (one
    round trip for both); entered inside a transaction it pipelines that part of it, and its end
    reads every result still pending. Elsewhere (another database; already in a pipeline) it does
    nothing and yields False or True respectively.

    What psycopg (3.3) syncs on its own, seen in libpq's trace of a pipelined transaction of one
    read (tests/odum_live/test_sql.py): the switch of autocommit off and back on (each reads the
    transaction status: a round trip in a pipeline), the BEGIN (sent and synced before the first
    statement), and the pipeline's end — six round trips in all where the read and the COMMIT need
    two. Switching autocommit outside the pipeline saves two (~0.15 ms warm, one process) but showed
    no gain in the benchmarks' alternating runs and was not kept (bench/RESULTS.md, session 12).

    Inside, a statement's row count is known only after a read or the pipeline's end: write with
    :func:`send_update` / :func:`send_insert` / :func:`send_statement`, never with ``Model.save``
    on an existing row (which checks the row count at once and would find none).
    """
    conn = connections[using]
    if conn.vendor != "postgresql":
        yield False
        return
    if in_pipeline(using=using):
        yield True
        return
    conn.ensure_connection()
    with conn.wrap_database_errors, conn.connection.pipeline():
        yield True


@contextlib.contextmanager
def pipelined_transaction() -> Iterator[Callable[[Callable[[], None]], None]]:
    """A transaction of the default database; yields how to run work after its commit.

    On PostgreSQL, outside a caller's transaction, a pipeline encloses it (:func:`pipeline`): its
    COMMIT goes in the round trip of its last writes instead of one of its own (psycopg syncs its
    BEGIN on its own: see :func:`pipeline`); an error of a write (e.g. a unique violation) comes up
    at that COMMIT, the transaction rolled back whole. The work given to the yielded function runs
    once the pipeline has ended, in the order given, as ``transaction.on_commit`` would run it after
    the outermost block: not at all when the block fails, nor when a failed inner
    ``atomic(savepoint=False)`` left the transaction to be rolled back (which Django's outermost
    ``atomic`` then does without an exception). Elsewhere (another database, or inside a caller's
    transaction) it is ``transaction.atomic()`` with ``transaction.on_commit``.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            yield transaction.on_commit
        return
    after: list[Callable[[], None]] = []
    committed: list[bool] = []
    with pipeline(), transaction.atomic():
        # Set by the COMMIT only: a transaction that a failed inner ``atomic(savepoint=False)`` left
        # to be rolled back ends without an exception (Django's rule), and its work must not run.
        transaction.on_commit(lambda: committed.append(True))
        yield after.append
    if committed:
        for callback in after:
            callback()
