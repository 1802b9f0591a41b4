"""Command-line loader: ``python -m ingest csv|json|metrics|images|demo ...`` writes straight into the store.

It validates with the same functions as the HTTP write path, so a file the CLI accepts is a
body the API accepts, and prints one line on success or the problems on stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from pathlib import Path

from data import writes
from data.settings import Settings, SettingsError, open_store
from data.store import DatasetKindConflict, TokenExists
from data.tokens import ALL_BUSINESSES, ROLES, encode_businesses, new_token, token_hash
from ingest.validation import (
    Problems,
    image_name_problem,
    parse_json_body,
    target_names,
    validate_ctr,
    validate_features,
    validate_metrics,
    validate_target,
)

IMAGE_COLUMN = "image_name"
CTR_COLUMN = "ctr"
COUNT_COLUMNS = ("clicks", "impressions")


class InputError(Exception):
    """Input that cannot be loaded; ``problems`` names each reason."""

    def __init__(self, summary: str, problems: list[str]):
        super().__init__(summary)
        self.summary = summary
        self.problems = problems


def _cell(text: str):
    """A CSV cell as JSON would have carried it: a number when it reads as one, else the text."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def csv_documents(text: str) -> tuple[dict, dict]:
    """The features and CTR bodies (PUT layouts) of a CSV in the original dashboard's layout.

    Columns: ``image_name``, ``ctr``, optional ``clicks`` and ``impressions``, and one column per
    feature. Empty feature cells mean 0; rows with an empty CTR (or empty counts) get no CTR.
    """
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    problems = Problems()
    if not header:
        raise InputError("empty CSV", ["the file has no header row"])
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        problems.add(f"columns appear more than once: {', '.join(repeated)}")
    if IMAGE_COLUMN not in header:
        problems.add(f'the header has no "{IMAGE_COLUMN}" column')
    if problems:
        raise InputError("invalid CSV header", problems.report())
    counted = all(c in header for c in COUNT_COLUMNS)
    special = {IMAGE_COLUMN, CTR_COLUMN, *COUNT_COLUMNS}
    feature_cols = [(i, c) for i, c in enumerate(header) if c not in special]
    image_at = header.index(IMAGE_COLUMN)
    ctr_at = header.index(CTR_COLUMN) if CTR_COLUMN in header else None
    count_at = [header.index(c) for c in COUNT_COLUMNS] if counted else None

    features: dict = {}
    ctr: dict = {}
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            problems.add(f"line {line}: {len(row)} cells, the header has {len(header)}")
            continue
        image = row[image_at]
        if image in features:
            problems.add(f"line {line}: image {image!r} appears more than once")
            continue
        features[image] = {name: _cell(row[i]) for i, name in feature_cols if row[i].strip()}
        if count_at and all(row[i].strip() for i in count_at):
            ctr[image] = dict(zip(COUNT_COLUMNS, (_cell(row[i]) for i in count_at)))
        elif ctr_at is not None and row[ctr_at].strip():
            ctr[image] = _cell(row[ctr_at])
    if problems:
        raise InputError("invalid CSV rows", problems.report())
    return features, ctr


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}", [exc.strerror or str(exc)]) from None


def _json_document(path: Path):
    doc, problems = parse_json_body(_read(path))
    if problems:
        raise InputError(f"invalid JSON in {path}", problems)
    return doc


def _checked(validate, doc, what: str):
    result, problems = validate(doc)
    if problems:
        raise InputError(f"invalid {what}", problems)
    return result


def _store_pair(store, business: str, source: str, features_doc, ctr_doc) -> str:
    """Validate both documents before writing either, then write; returns the result line."""
    business, source = target_names(business, source)
    problems = validate_target(business, source, labels=("--business", "--source"))
    if problems:
        raise InputError("invalid arguments", problems)
    batch = _checked(validate_features, features_doc, "features")
    frame = _checked(validate_ctr, ctr_doc, "CTR") if ctr_doc else None

    def store_both(writer):
        return writer.add_build(business, source, batch), frame is not None and writer.replace_ctr(
            business, source, frame
        )

    # One transaction, then the post-write work (the nulls the first summary reads), as a PUT does.
    build, ctr = writes.write(store, store_both)
    line = (
        f"stored build {build['build_id']} of {business!r} / {source!r}: "
        f"{build['images']} images, {build['features']} features, {build['values']} non-zero values"
    )
    if ctr:
        line += f"; CTR for {ctr['images']} images" + (" with clicks and impressions" if ctr["has_counts"] else "")
    return line


def load_csv(store, path: Path, business: str, source: str) -> str:
    """Load a CSV in the original dashboard's layout as a build and a CTR set."""
    try:
        text = _read(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid CSV in {path}", [f"not valid UTF-8 at byte offset {exc.start}"]) from None
    features, ctr = csv_documents(text)
    return _store_pair(store, business, source, features, ctr)


def load_json(store, path: Path, business: str, source: str, ctr_path: Path | None = None) -> str:
    """Load a PUT /api/features body as a build, and optionally a PUT /api/ctr body."""
    features = _json_document(path)
    ctr = _json_document(ctr_path) if ctr_path else None
    return _store_pair(store, business, source, features, ctr)


def load_demo_data(store) -> str:
    """Load the demo datasets."""
    from data.demo import load_demo

    loaded = writes.write(store, load_demo)  # both datasets, or neither
    builds = [
        f"build {b['build_id']} of {b['business']!r} / {b['source']!r} ({b['images']} images, {b['features']} features)"
        for b in loaded.values()
        if isinstance(b, dict) and {"build_id", "business", "source", "images", "features"} <= b.keys()
    ]
    return "loaded the demo data: " + ("; ".join(builds) or str(loaded))


METRICS_COLUMNS = ("image", "date", "clicks", "impressions")


def metrics_document(text: str) -> dict:
    """The PUT /api/metrics body of a CSV with columns image, date, clicks and impressions (one row per image and day)."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise InputError("empty CSV", ["the file has no header row"])
    missing = [c for c in METRICS_COLUMNS if c not in header]
    if missing:
        raise InputError("invalid CSV header", [f"the header has no {', '.join(repr(c) for c in missing)} column"])
    at = [header.index(c) for c in METRICS_COLUMNS]
    doc: dict = {}
    problems = Problems()
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.add(f"line {line}: {len(row)} cells, the header has {len(header)}")
            continue
        image, day, clicks, impressions = (row[i] for i in at)
        days = doc.setdefault(image, {})
        if day in days:
            problems.add(f"line {line}: image {image!r} day {day!r} appears more than once")
        days[day] = {"clicks": _cell(clicks), "impressions": _cell(impressions)}
    if problems:
        raise InputError("invalid CSV", problems.report())
    return doc


def load_metrics(store, path: Path, business: str, source: str, *, merge: bool = False) -> str:
    """Load a CSV of dated metrics as PUT /api/metrics does (``merge``: as PATCH, day by day)."""
    business, source = target_names(business, source)
    problems = validate_target(business, source, labels=("--business", "--source"))
    if problems:
        raise InputError("invalid arguments", problems)
    try:
        text = _read(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid CSV in {path}", [f"not valid UTF-8 at byte offset {exc.start}"]) from None
    frame = _checked(validate_metrics, metrics_document(text), "dated metrics")
    method = "merge_metrics" if merge else "replace_metrics"
    try:
        stored = writes.write(store, lambda writer: getattr(writer, method)(business, source, frame))
    except DatasetKindConflict as exc:
        raise InputError("the dataset holds the other kind of CTR data", [str(exc)]) from None
    return (
        f"stored dated metrics of {business!r} / {source!r}: {stored['rows']} image-days of {stored['images']} images, "
        f"{stored['first_day']} to {stored['last_day']}"
    )


THUMBNAIL_BATCH = 500  # thumbnails written per transaction by ``images``


def load_images(store, folder: Path, business: str, source: str, max_bytes: int) -> tuple[str, list[str]]:
    """Store a thumbnail of each image file in ``folder`` (not its subfolders), named as a zip entry is.

    Each file is decoded by itself, one at a time, and stored or refused by itself (refused: not
    an image, over the limits, larger than ``max_bytes``, an invalid name or one two files share).
    Returns the result line and the refusals.
    """
    from data.thumbnails import InvalidImage, image_name_of, make_thumbnail

    problems = validate_target(business, source, labels=("--business", "--source"))
    if problems:
        raise InputError("invalid arguments", problems)
    if not folder.is_dir():
        raise InputError(f"cannot read {folder}", ["not a folder"])
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    names = [image_name_of(p.name) for p in files]
    shared = {name for name, count in Counter(names).items() if count > 1}
    refused, batch, stored = [], [], 0
    for path, image in zip(files, names):
        problem = image_name_problem(image) or ("another file has the same image name" if image in shared else None)
        if problem is None and path.stat().st_size > max_bytes:
            problem = f"larger than {max_bytes:,} bytes (MAX_BODY_MB)"
        if problem is None:
            try:
                batch.append((image, make_thumbnail(_read(path))))
            except InvalidImage as exc:
                problem = str(exc)
        if problem is not None:
            refused.append(f"{path.name}: {problem}")
        if len(batch) >= THUMBNAIL_BATCH:
            stored += len(store.put_thumbnails(business, source, batch))
            batch = []
    if batch:
        stored += len(store.put_thumbnails(business, source, batch))
    line = f"stored {stored} thumbnails of {business!r} / {source!r}" + (f"; refused {len(refused)}" if refused else "")
    return line, refused


def create_token(store, name: str, role: str, businesses: list[str]) -> str:
    """Store a new token's hash; returns the lines to print, the token itself the last word of the last."""
    problems = []
    if not name.strip():
        problems.append("--name must not be empty")
    if any(not b.strip() for b in businesses):
        problems.append("--business must not be empty (use '*' for every business)")
    if problems:
        raise InputError("invalid arguments", problems)
    token = new_token()
    try:
        store.create_token(name, role, encode_businesses(businesses), token_hash(token))
    except TokenExists as exc:
        raise InputError("token not created", [str(exc)]) from None
    scope = "every business" if ALL_BUSINESSES in businesses else ", ".join(sorted(set(businesses)))
    return (
        f"created {role} token {name!r} for {scope}; it is shown only now, so keep it in a secret store:\n"
        f"token: {token}"
    )


def list_tokens(store) -> str:
    """The stored tokens, one line each: name, role, businesses, created, last used (never the token)."""
    frame = store.tokens()
    if frame.empty:
        return "no tokens"
    rows = [("NAME", "ROLE", "BUSINESSES", "CREATED", "LAST USED")]
    for t in frame.itertuples(index=False):
        scope = ", ".join(json.loads(t.businesses))
        rows.append((t.name, t.role, scope, t.created_at, t.last_used_at or "never"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]) for r in rows)


def revoke_token(store, name: str) -> str:
    """Delete a token: every request and session using it is refused from its next request on."""
    if not store.revoke_token(name):
        raise InputError("token not revoked", [f"no token named {name!r}"])
    return f"revoked token {name!r}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m ingest``."""
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Load features and CTRs into the store.")
    parser.add_argument("--database-url", help="overrides DATABASE_URL")
    commands = parser.add_subparsers(dest="command", required=True)

    def pair(sub):
        sub.add_argument("--business", required=True)
        sub.add_argument("--source", required=True)
        sub.add_argument("--database-url", default=argparse.SUPPRESS, help="overrides DATABASE_URL")

    from_csv = commands.add_parser("csv", help="a CSV with image_name, ctr and one column per feature")
    from_csv.add_argument("file", type=Path)
    pair(from_csv)
    from_json = commands.add_parser("json", help="a JSON file in the PUT /api/features layout")
    from_json.add_argument("file", type=Path)
    from_json.add_argument("--ctr", type=Path, help="a JSON file in the PUT /api/ctr layout")
    pair(from_json)
    from_metrics = commands.add_parser("metrics", help="a CSV of dated metrics: image, date, clicks, impressions")
    from_metrics.add_argument("file", type=Path)
    from_metrics.add_argument(
        "--merge", action="store_true", help="merge day by day (as PATCH) instead of replacing every stored day"
    )
    pair(from_metrics)
    from_images = commands.add_parser("images", help="a folder of JPEG, PNG, WebP or GIF images, stored as thumbnails")
    from_images.add_argument("folder", type=Path)
    pair(from_images)
    demo = commands.add_parser("demo", help="the demo datasets")
    demo.add_argument("--database-url", default=argparse.SUPPRESS, help="overrides DATABASE_URL")

    token = commands.add_parser("token", help="access tokens for the API and the page: create, list, revoke")
    token.add_argument("--database-url", default=argparse.SUPPRESS, help="overrides DATABASE_URL")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a token and print it (shown only once)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. jenkins-acme")
    create.add_argument("--role", required=True, choices=ROLES, help="read, or write (which also reads)")
    create.add_argument(
        "--business", required=True, action="append", help="a business it may use (repeat for more; '*' for all)"
    )
    listing = actions.add_parser("list", help="name, role, businesses, created, last used (never the token)")
    revoke = actions.add_parser("revoke", help="delete a token; refused from its next request on")
    revoke.add_argument("name")
    for action in (create, listing, revoke):  # also after the action, as the loaders take it
        action.add_argument("--database-url", default=argparse.SUPPRESS, help="overrides DATABASE_URL")
    return parser


def run_token_command(store, args) -> str:
    """``python -m ingest token create|list|revoke``."""
    if args.action == "create":
        return create_token(store, args.name, args.role, args.business)
    if args.action == "list":
        return list_tokens(store)
    return revoke_token(store, args.name)


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (0 done, 1 bad input or settings, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    try:
        overrides = {"database_url": args.database_url} if args.database_url else {}
        settings = Settings.from_env(**overrides)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    store = open_store(settings)
    try:
        if args.command == "csv":
            line = load_csv(store, args.file, args.business, args.source)
        elif args.command == "json":
            line = load_json(store, args.file, args.business, args.source, args.ctr)
        elif args.command == "metrics":
            line = load_metrics(store, args.file, args.business, args.source, merge=args.merge)
        elif args.command == "images":
            line, refused = load_images(store, args.folder, args.business, args.source, settings.max_body_bytes)
            if refused:
                print(line)
                raise InputError(f"{len(refused)} files were refused (the others are stored)", refused)
        elif args.command == "token":
            line = run_token_command(store, args)
        else:
            line = load_demo_data(store)
    except InputError as exc:
        print(f"error: {exc.summary}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(line)
    return 0
