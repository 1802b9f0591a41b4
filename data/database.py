"""What differs between SQLite and PostgreSQL under the store: engines, bulk inserts, locks, faults."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from data.errors import StorageUnavailable

# PostgreSQL advisory lock keys: (class, object) pairs of 32-bit ints, one class for start-up
# and one for the per-dataset write lock, so neither can collide with the other.
_LOCK_CLASS_STARTUP = 0x43410001
_LOCK_CLASS_DATASET = 0x43410002


def is_sqlite(url: str) -> bool:
    """True when ``url`` names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def open_engine(url: str) -> Engine:
    """An engine for ``url`` set up for the store's transactions on its dialect."""
    if is_sqlite(url):
        engine = create_engine(url)
        _sqlite_setup(engine)
        return engine
    # pre_ping replaces a connection the server dropped (restart, failover) before it is used.
    # libpq waits for ever on a server that drops packets: bound it unless the URL says otherwise.
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": PG_CONNECT_TIMEOUT}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


PG_CONNECT_TIMEOUT = 10


def check_writable(engine: Engine) -> None:
    """Raise when a new connection could not write now; a driver error, or StorageUnavailable.

    A new connection, not a pooled one: pooled connections keep what they saw when they were
    opened (a read-only default, a file opened read-only, a folder since gone). It never waits
    behind a writer: a write lock held by another connection means writes work.
    """
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    if engine.dialect.name == "sqlite":
        if engine.url.database in (None, "", ":memory:"):
            return  # a private in-memory database: a new connection would open another one
        # SQLite shares one file handle per file within a process, so a new connection of a
        # process that opened the file writable still writes: ask the file system as well.
        path = cargs[0] if cargs else ""
        if not str(path).startswith("file:") and os.path.exists(path) and not os.access(path, os.W_OK):
            engine.dispose()
            raise StorageUnavailable("database is read-only", f"{path} is not writable")
        conn = engine.dialect.dbapi.connect(*cargs, **{**cparams, "timeout": 0, "isolation_level": None})
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
                    return
                raise
            # A file opened read-only takes BEGIN IMMEDIATE; only a write (rolled back) tells.
            conn.execute("UPDATE store_version SET version = version")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    conn = engine.dialect.connect(*cargs, **cparams)
    try:
        read_only = conn.execute("SELECT current_setting('transaction_read_only')").fetchone()[0]
    finally:
        conn.close()
    if read_only == "on":
        engine.dispose()  # pooled connections may predate the change
        raise StorageUnavailable("database is read-only", "new connections are read-only")


SQLITE_BUSY_MS = 30_000


def _enable_wal(cursor) -> None:
    """Switch the file to WAL, waiting out a connection that is switching it at the same moment.

    Changing the journal mode answers "database is locked" at once, without the busy timeout,
    while another connection converts the file (seen when several workers open a new database
    together), so it is retried for as long as the busy timeout would have waited.
    """
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_setup(engine: Engine) -> None:
    """WAL, durable commits, a busy timeout, and explicit BEGIN so writers take the lock up front.

    pysqlite's own transaction handling defers BEGIN and cannot upgrade a read lock under
    contention without failing at once; BEGIN IMMEDIATE on writes waits on the busy timeout
    instead, so concurrent PUTs queue rather than error. synchronous=FULL syncs the WAL on
    every commit: a write answered 201 survives a power loss.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def write_connection(engine: Engine) -> Connection:
    """A connection whose transactions write: on SQLite they take the database's write lock at BEGIN."""
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn = conn.execution_options(sqlite_write=True)
    return conn


def read_connection(engine: Engine) -> Connection:
    """A connection whose transaction reads one snapshot from its first statement to its end.

    SQLite in WAL mode already reads one snapshot per transaction; PostgreSQL's default READ
    COMMITTED takes a new one per statement, so a build pruned between two statements would vanish.
    """
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def lock_startup(conn: Connection) -> None:
    """Hold the database-wide start-up lock until the transaction ends (SQLite: BEGIN IMMEDIATE holds it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _LOCK_CLASS_STARTUP, "b": 0})


def lock_dataset(conn: Connection, business: str, source: str) -> None:
    """Serialise the writers of one (business, source) until the transaction ends.

    SQLite's BEGIN IMMEDIATE already serialises every writer. On PostgreSQL two transactions
    replacing the same CTR set would otherwise both delete the old one and race on the
    insert; a hash collision between two pairs only makes them wait for each other.
    """
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"{business}\x00{source}".encode(), digest_size=4).digest()
    key = int.from_bytes(digest, "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _LOCK_CLASS_DATASET, "b": key})


def bulk_insert(conn: Connection, table, columns: tuple[str, ...], rows) -> None:
    """Insert many rows in the connection's transaction: COPY on PostgreSQL, executemany on SQLite.

    Both go through the DBAPI cursor, several times faster than SQLAlchemy's executemany.
    """
    cursor = conn.connection.driver_connection.cursor()
    names = ", ".join(columns)
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["?"] * len(columns))
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def read_bytes(conn: Connection, column, key_column, key) -> bytes | None:
    """The binary value of ``column`` in the row whose ``key_column`` is ``key``, or None.

    Through the DBAPI cursor, in binary format on PostgreSQL: the text format sends bytea
    hex-encoded, and a 9 MB value took 70-90 ms that way against about 20 ms.
    """
    options = {"binary": True} if conn.dialect.name == "postgresql" else {}
    cursor = conn.connection.driver_connection.cursor(**options)
    try:
        cursor.execute(
            f"SELECT {column.name} FROM {column.table.name} WHERE {key_column.name} = {placeholder(conn)}", (key,)
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else bytes(row[0])


def placeholder(conn: Connection) -> str:
    """The DBAPI's positional parameter marker for raw cursor statements."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


# SQLite result codes (sqlite3's sqlite_errorname) and PostgreSQL SQLSTATEs that mean the storage,
# not the request, is at fault.
_SQLITE_CAUSES = {
    "SQLITE_READONLY": "database is read-only",
    "SQLITE_FULL": "disk full",
    "SQLITE_CANTOPEN": "database unreachable",
    "SQLITE_IOERR": "database unreachable",
    "SQLITE_BUSY": "database busy",
    "SQLITE_LOCKED": "database busy",
}
_PG_CAUSES = {
    "25006": "database is read-only",  # read_only_sql_transaction (a standby, or default_transaction_read_only)
    "53100": "disk full",
    "53200": "database busy",  # out of memory
    "53300": "database busy",  # too many connections
    "57P01": "database unreachable",  # admin shutdown
    "57P02": "database unreachable",  # crash shutdown
    "57P03": "database unreachable",  # cannot connect now (starting up)
    "58030": "disk full",  # io error, e.g. ENOSPC while extending a file
}


def fault_cause(exc: BaseException) -> str | None:
    """The storage fault behind a driver exception, or None when the request itself is at fault."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    name = getattr(orig, "sqlite_errorname", None)
    if name:
        for prefix, cause in _SQLITE_CAUSES.items():
            if name.startswith(prefix):
                return cause
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_CAUSES:
        return _PG_CAUSES[sqlstate]
    if sqlstate and sqlstate.startswith("08"):
        return "database unreachable"  # connection exceptions
    if type(orig).__name__ == "OperationalError" and sqlstate is None and "sqlite3" not in type(orig).__module__:
        return "database unreachable"  # psycopg: no connection could be made at all
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "database unreachable"
    return None


@contextmanager
def storage_faults(engine: Engine):
    """Raise StorageUnavailable for a storage fault and drop the pool, so the next call reconnects.

    A connection opened while the file was read-only stays read-only after the fault is fixed,
    and a connection to a restarted server is dead: only new connections recover.
    """
    dbapi = engine.dialect.dbapi
    try:
        yield
    except (DBAPIError, dbapi.Error) as exc:
        cause = fault_cause(exc)
        if cause is None:
            raise
        engine.dispose()
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        raise StorageUnavailable(cause, str(orig).strip().splitlines()[0] if str(orig).strip() else "") from exc
