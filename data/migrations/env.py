"""Alembic's environment: the store hands over its open connection; a developer's command gives a URL."""

from alembic import context

from data import database
from data.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn) -> None:
    # render_as_batch: a generated ALTER on SQLite is written as a table copy, which SQLite can do.
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    engine = database.open_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with database.write_connection(engine) as conn, conn.begin():
            database.lock_startup(conn)
            _run(conn)
    finally:
        engine.dispose()
