"""SQLAlchemy Core tables of the feature store (long format, one row per non-zero value).

The tables as the newest revision in ``data/migrations/`` leaves them: the store's queries are
written against these, and the revisions, not ``create_all``, make and change the database.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# A build id: 64-bit on PostgreSQL, where INTEGER is 32-bit; SQLite's INTEGER PRIMARY KEY is its
# 64-bit rowid already, and only a column declared exactly INTEGER becomes that rowid.
BUILD_ID = BigInteger().with_variant(Integer(), "sqlite")

# One row per PUT of features for a (business, source); the newest id is the current build.
builds = Table(
    "builds",
    metadata,
    Column("id", BUILD_ID, primary_key=True, autoincrement=True),
    Column("business", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("n_images", Integer, nullable=False),
    Column("n_features", Integer, nullable=False),
    Column("n_values", Integer, nullable=False),
    # The client's name for the build (Jenkins' $BUILD_TAG): a retried PUT with the same tag
    # finds the stored build instead of storing a duplicate. NULLs never collide.
    Column("tag", Text, nullable=True),
    Index("ix_builds_pair", "business", "source", "id"),
    Index("ux_builds_tag", "business", "source", "tag", unique=True),
)

# Names are stored once per build and referred to by position, which keeps the long table small.
build_images = Table(
    "build_images",
    metadata,
    Column("build_id", BUILD_ID, ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", Text, nullable=False),
)

build_features = Table(
    "build_features",
    metadata,
    Column("build_id", BUILD_ID, ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", Text, nullable=False),
)

# Long format: (build, image, feature, confidence). Zero confidences are not stored: a missing
# row means 0, which is never "present" since presence is confidence > threshold >= 0.
# Clustered on its key (WITHOUT ROWID on SQLite): a build's rows arrive in key order, so the
# insert appends to one b-tree instead of a table plus a separate index, and reading or
# pruning a build is a range scan of that same tree. No foreign key to builds: the store inserts a
# build's values in the transaction that inserts the build and deletes them before the build, and
# on PostgreSQL the per-row check of a foreign key made a 316k-row COPY take 2.7 s instead of 0.8 s.
feature_values = Table(
    "feature_values",
    metadata,
    Column("build_id", BUILD_ID, primary_key=True, autoincrement=False),
    Column("image_idx", Integer, primary_key=True, autoincrement=False),
    Column("feature_idx", Integer, primary_key=True, autoincrement=False),
    Column("confidence", Float, nullable=False),
    sqlite_with_rowid=False,
)

# Each build's confidences as one compact archive (data/matrix.py: its CSC arrays), written with its
# values in the same transaction: a worker reads a build in one row instead of one per value
# (10,000 x 1,000: 730k rows). feature_values stays the record; a build stored without an
# archive is read from it. No foreign key, for the same reason as feature_values.
build_matrices = Table(
    "build_matrices",
    metadata,
    Column("build_id", BUILD_ID, primary_key=True, autoincrement=False),
    Column("matrix_data", LargeBinary, nullable=False),
)

# One row per CTR upload of a (business, source); a new upload replaces the old one whole.
ctr_sets = Table(
    "ctr_sets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("business", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("n_images", Integer, nullable=False),
    Column("has_counts", Integer, nullable=False),
    Index("ux_ctr_sets_pair", "business", "source", unique=True),
)

ctr_values = Table(
    "ctr_values",
    metadata,
    Column("ctr_set_id", Integer, ForeignKey("ctr_sets.id", ondelete="CASCADE"), nullable=False),
    Column("image", Text, nullable=False),
    Column("ctr", Float, nullable=False),
    # 64-bit on every backend (PostgreSQL's INTEGER is 32-bit): counts go up to 2**53 - 1.
    Column("clicks", BigInteger, nullable=True),
    Column("impressions", BigInteger, nullable=True),
    Index("ix_ctr_values_set", "ctr_set_id"),
)

# One row, bumped by every write in its own transaction: the version token the page polls.
# Build and CTR set ids cannot serve: on PostgreSQL writers of different datasets run at once
# and may commit a smaller id after a larger one, which a reader of max(id) would never notice.
store_version = Table(
    "store_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)

# Permutation null tables (data/nulls.py), drawn once when a build or CTR set lands and read by
# every worker. Derived data keyed by content: deleting any row only means drawing it again.
null_tables = Table(
    "null_tables",
    metadata,
    Column("key", Text, primary_key=True),
    Column("stored_at", String(32), nullable=False),
    Column("table_data", LargeBinary, nullable=False),
)

# Image thumbnails (data/thumbnails.py: re-encoded, at most 320 px on the long side), keyed by
# the image's name within its (business, source) rather than by build: images recur from build
# to build, so a thumbnail stays until it is replaced or deleted. ``etag`` tags its bytes.
image_thumbnails = Table(
    "image_thumbnails",
    metadata,
    Column("business", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("image", Text, primary_key=True),
    Column("content_type", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("stored_at", String(32), nullable=False),
    Column("image_data", LargeBinary, nullable=False),
)

# Access tokens (data/tokens.py): only the SHA-256 of each token is kept. Ids are never reused
# (AUTOINCREMENT on SQLite), so a signed-in session naming a revoked token's id stays dead.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("role", String(8), nullable=False),
    # A JSON list of business names, ["*"] for every business.
    Column("businesses", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_used_at", String(32), nullable=True),
    Index("ux_access_tokens_name", "name", unique=True),
    Index("ux_access_tokens_hash", "token_hash", unique=True),
    sqlite_autoincrement=True,
)

# Secrets the app generates once and every worker and host shares (the session signing key).
app_secrets = Table(
    "app_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# A calendar day: DATE on PostgreSQL; ISO text ("2026-03-01") on SQLite, which has no date type
# and whose text order is the calendar's. Both compare, sort and filter by range as dates.
DAY = Date().with_variant(String(10), "sqlite")

# Dated metrics (data/metrics_queries.py): a dataset holds either a CTR set or these. One row per
# pair that has them; a write replaces the row, so its id (never reused) keys the dataset cache.
metric_sets = Table(
    "metric_sets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("business", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("n_images", Integer, nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("first_day", DAY, nullable=True),
    Column("last_day", DAY, nullable=True),
    Index("ux_metric_sets_pair", "business", "source", unique=True),
    sqlite_autoincrement=True,
)

# Clicks and impressions per image and day, as ad servers export them, each row with its image's
# running totals through its day (its clicks and impressions summed over its stored days up to and
# including the row's day). Keyed by day before image: a day's rows are one range scan, so a
# window's sums per image are its running totals on the window's last stored day less those on
# the last stored day before the window, two short range scans whatever the window's length
# (summing the window's rows took 0.5-1.1 s for a quarter or half of a year of 10,000 images).
# Images without a row on those days are found from their sums and first and last days below.
image_metrics_daily = Table(
    "image_metrics_daily",
    metadata,
    Column("business", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("day", DAY, primary_key=True),
    Column("image", Text, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("impressions", BigInteger, nullable=False),
    Column("cum_clicks", BigInteger, nullable=False),
    Column("cum_impressions", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Each image's sums over every stored day and its first and last stored days, kept with the daily
# rows in the same transaction: a read without a window (the page, the listing) reads one row per
# image, not one per image-day; the sums are the running totals of the image's last day.
image_metrics_totals = Table(
    "image_metrics_totals",
    metadata,
    Column("business", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("image", Text, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("impressions", BigInteger, nullable=False),
    Column("first_day", DAY, nullable=False),
    Column("last_day", DAY, nullable=False),
    sqlite_with_rowid=False,
)
