"""Who may read or write what: tokens, ACCESS, the API's 401/403/404, the page's sign-in and session."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import parse_qs

import numpy as np
import pytest

from dashboard.factory import create_app
from dashboard.page import ids
from dashboard.page.views import CURRENT_BUILD, unpacked_rows
from data.store import TokenExists, UnknownBuild, UnknownDataset
from data.tokens import READ, WRITE, Actor, encode_businesses, may, new_token, token_hash
from ingest.access import SESSION_COOKIE
from ingest.cli import main as cli_main
from tests.helpers import load_frame
from tests.test_callbacks import REDRAW_OUTPUTS, _controls, _dash_post

pytestmark = pytest.mark.both_engines

A, B, SOURCE = "Acme Outfitters", "Bravo Shoes", "vision"
REMOTE = {"REMOTE_ADDR": "203.0.113.9"}
ORIGIN = {"Origin": "http://localhost"}
INGEST = "ingest-s3cret"


def make_token(store, name, role, *businesses) -> str:
    token = new_token()
    store.create_token(name, role, encode_businesses(businesses), token_hash(token))
    return token


def bearer(token) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(store, reference_frame):
    """Two businesses, one source each, from the reference images."""
    load_frame(store, reference_frame, A, SOURCE)
    load_frame(store, reference_frame.iloc[:200], B, SOURCE)
    return store


@pytest.fixture
def tokens(seeded):
    return {
        "read_a": make_token(seeded, "reader-a", READ, A),
        "write_a": make_token(seeded, "jenkins-a", WRITE, A),
        "all": make_token(seeded, "everyone", READ, "*"),
    }


def app_client(settings, store, **overrides):
    return create_app(settings.with_overrides(**overrides), store).server.test_client()


def snapshot(store):
    """Everything stored of both datasets: builds, features and CTRs."""
    out = {}
    for business in (A, B):
        ds = store.dataset(business, SOURCE)
        out[business] = (
            store.builds(business, SOURCE).to_json(),
            list(ds.features),
            np.nan_to_num(ds.ctr, nan=-1).tolist(),
        )
    return out, store.version()


# -- the permission check and the stored tokens ------------------------------------------------------


@pytest.mark.parametrize(
    "actor, action, business, allowed",
    [
        (None, READ, A, False),
        (Actor("r", READ, frozenset({A})), READ, A, True),
        (Actor("r", READ, frozenset({A})), READ, B, False),
        (Actor("r", READ, frozenset({A})), WRITE, A, False),
        (Actor("w", WRITE, frozenset({A})), READ, A, True),
        (Actor("w", WRITE, frozenset({A})), WRITE, A, True),
        (Actor("w", WRITE, frozenset({A})), WRITE, B, False),
        (Actor("all", READ, None), READ, B, True),
        (Actor("all", READ, None), WRITE, B, False),
        (Actor("all", WRITE, None), "delete", B, False),
    ],
)
def test_may_decides_by_role_and_business(actor, action, business, allowed):
    assert may(actor, action, business, SOURCE) is allowed


def test_store_keeps_only_the_hash_and_lists_no_token(store):
    token = make_token(store, "jenkins", WRITE, A, B)
    assert re.fullmatch(r"cat_[A-Za-z0-9_-]{43}", token)
    row = store.token_by_hash(token_hash(token))
    assert row["name"] == "jenkins" and row["token_hash"] == token_hash(token) and token not in json.dumps(row)
    listed = store.tokens()
    assert list(listed.columns) == ["name", "role", "businesses", "created_at", "last_used_at"]
    assert token not in listed.to_json() and token_hash(token) not in listed.to_json()
    with pytest.raises(TokenExists):
        store.create_token("jenkins", READ, encode_businesses([A]), token_hash(new_token()))
    assert store.revoke_token("jenkins") and not store.revoke_token("jenkins")
    assert store.token_by_hash(token_hash(token)) is None and store.tokens().empty


def test_cli_token_create_list_revoke(db_url, store, capsys):
    assert (
        cli_main(["--database-url", db_url, "token", "create", "--name", "ci", "--role", "write"] + ["--business", A])
        == 0
    )
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1].split()[-1]
    assert store.token_by_hash(token_hash(token))["role"] == WRITE
    assert cli_main(["token", "list", "--database-url", db_url]) == 0  # the URL before or after the action
    listing = capsys.readouterr().out
    assert "ci" in listing and A in listing and "never" in listing and token not in listing
    assert (
        cli_main(["--database-url", db_url, "token", "create", "--name", "ci", "--role", "read", "--business", B]) == 1
    )
    assert "exists" in capsys.readouterr().err
    assert cli_main(["token", "revoke", "ci", "--database-url", db_url]) == 0
    assert cli_main(["--database-url", db_url, "token", "revoke", "ci"]) == 1
    assert store.tokens().empty


def test_a_token_for_a_business_typed_decomposed_reads_that_business(db_url, settings, store, reference_frame, capsys):
    """Business names are NFC wherever they enter: a scope given with a decomposed accent is the stored name."""
    import unicodedata

    cafe = "Café Outfitters"
    load_frame(store, reference_frame, cafe, SOURCE)
    decomposed = unicodedata.normalize("NFD", cafe)
    assert decomposed != cafe
    create = ["--database-url", db_url, "token", "create", "--name", "cafe", "--role", "read", "--business", decomposed]
    assert cli_main(create) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1].split()[-1]
    assert json.loads(store.token_by_hash(token_hash(token))["businesses"]) == [cafe]
    listed = app_client(settings, store).get("/api/datasets", headers=bearer(token), environ_base=REMOTE).get_json()
    assert [d["business"] for d in listed["datasets"]] == [cafe]


def test_using_a_token_records_its_last_use(settings, tokens, seeded):
    client = app_client(settings, seeded)
    assert seeded.tokens().set_index("name").loc["reader-a", "last_used_at"] is None
    response = client.get("/api/datasets", headers=bearer(tokens["read_a"]), environ_base=REMOTE)
    assert response.status_code == 200
    response.close()  # as a WSGI server does once the answer is sent: the use is recorded then
    first = seeded.tokens().set_index("name").loc["reader-a", "last_used_at"]
    assert first is not None
    again = client.get("/api/datasets", headers=bearer(tokens["read_a"]), environ_base=REMOTE)
    again.close()  # within a minute: not written again
    assert seeded.tokens().set_index("name").loc["reader-a", "last_used_at"] == first


# -- the read API ----------------------------------------------------------------------------------

READ_ROUTES = [
    "/api/datasets",
    "/api/builds?business={b}&source=vision",
    "/api/summary?business={b}&source=vision",
    "/api/summary.csv?business={b}&source=vision",
    "/api/points.csv?business={b}&source=vision",
    "/api/drift?business={b}&source=vision&from_build={build}&to_build={build}",
    "/api/version",
    "/api/gallery?business={b}&source=vision&feature=text",
]


def _route(template, store, business):
    build = store.resolve_build(business, SOURCE) if business in (A, B) else 1
    return template.format(b=business, build=build)


@pytest.mark.parametrize("template", READ_ROUTES)
def test_read_routes_answer_401_without_a_token_off_this_machine(settings, seeded, template, caplog):
    client = app_client(settings, seeded)
    for headers in ({}, bearer("cat_not-a-token"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        with caplog.at_level(logging.WARNING, logger="creatives.access"):
            response = client.get(_route(template, seeded, A), headers=headers, environ_base=REMOTE)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.get_json()["error"] == "missing or wrong token"
    assert "refused 401" in caplog.text and "cat_not-a-token" not in caplog.text
    # The same request from this machine needs no token under the default ACCESS=local.
    assert client.get(_route(template, seeded, A)).status_code == 200


@pytest.mark.parametrize("template", READ_ROUTES)
def test_access_tokens_needs_a_token_from_loopback_too(settings, tokens, seeded, template):
    client = app_client(settings, seeded, access="tokens")
    assert client.get(_route(template, seeded, A)).status_code == 401
    assert client.get(_route(template, seeded, A), headers=bearer(tokens["read_a"])).status_code == 200


@pytest.mark.parametrize("template", READ_ROUTES)
def test_access_public_reads_without_a_token(settings, seeded, template):
    client = app_client(settings, seeded, access="public")
    assert client.get(_route(template, seeded, B), environ_base=REMOTE).status_code == 200


def test_an_authorization_of_another_scheme_is_left_to_the_proxy(settings, tokens, seeded):
    """Basic (a proxy's sign-in in front of the app) is no token: public reads and sessions still work."""
    basic = {"Authorization": "Basic Zm9vOmJhcg=="}
    public = app_client(settings, seeded, access="public")
    assert public.get("/api/datasets", headers=basic, environ_base=REMOTE).status_code == 200
    client = app_client(settings, seeded, access="tokens")
    assert client.get("/api/datasets", headers=basic).status_code == 401
    sign_in(client, tokens["read_a"], headers=basic)
    assert client.get("/_dash-layout", headers=basic).status_code == 200
    assert put_ctr(client, A, basic, environ_base=REMOTE).status_code == 403  # the session's read token
    before = snapshot(seeded)
    fresh = app_client(settings, seeded, access="tokens")
    assert put_ctr(fresh, A, basic, environ_base=REMOTE).status_code == 401 and snapshot(seeded) == before
    assert client.get("/api/datasets", headers=bearer("cat_mistyped")).status_code == 401  # a bad Bearer still fails


@pytest.mark.parametrize("template", [t for t in READ_ROUTES if "{b}" in t])
def test_a_business_outside_the_scope_answers_as_an_unknown_one(settings, tokens, seeded, template, caplog):
    client = app_client(settings, seeded)
    headers = bearer(tokens["read_a"])
    assert client.get(_route(template, seeded, A), headers=headers, environ_base=REMOTE).status_code == 200
    with caplog.at_level(logging.WARNING, logger="creatives.access"):
        hidden = client.get(_route(template, seeded, B), headers=headers, environ_base=REMOTE)
    unknown = client.get(_route(template, seeded, "Nobody Inc"), headers=headers, environ_base=REMOTE)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.get_data(as_text=True).replace(B, "X") == unknown.get_data(as_text=True).replace("Nobody Inc", "X")
    assert dict(hidden.headers) == dict(unknown.headers) | {"Content-Length": hidden.headers["Content-Length"]}
    assert "actor=reader-a" in caplog.text and f"business={B!r}" in caplog.text and tokens["read_a"] not in caplog.text


def test_a_thumbnail_is_served_only_within_the_scope(settings, tokens, seeded):
    """A stored thumbnail of business A: A's reader gets it; B's reader gets the 404 of an image with none."""
    from data.thumbnails import make_thumbnail
    from tests.image_samples import png

    image = str(seeded.dataset(A, SOURCE).images[0])
    seeded.put_thumbnails(A, SOURCE, [(image, make_thumbnail(png(40, 30)))])
    b_reader = make_token(seeded, "reader-b", READ, B)
    client = app_client(settings, seeded)
    url = f"/api/images/{image}?business={A}&source={SOURCE}"
    assert client.get(url, environ_base=REMOTE).status_code == 401
    assert client.get(url, headers=bearer(tokens["read_a"]), environ_base=REMOTE).status_code == 200
    outside = client.get(url, headers=bearer(b_reader), environ_base=REMOTE)
    missing = client.get(url.replace(image, "no-such-image"), headers=bearer(tokens["read_a"]), environ_base=REMOTE)
    nobody = client.get(url.replace(A, "Nobody Inc"), headers=bearer(b_reader), environ_base=REMOTE)
    assert outside.status_code == missing.status_code == nobody.status_code == 404
    assert outside.get_json()["error"] == missing.get_json()["error"] == "no thumbnail"
    # Apart from the name, the body is that of a business that does not exist.
    assert outside.get_data(as_text=True).replace(A, "X") == nobody.get_data(as_text=True).replace("Nobody Inc", "X")


def test_trend_answers_401_without_a_token_and_404_outside_the_scope(settings, tokens, seeded, reference_frame, caplog):
    """/api/trend (dated metrics of both businesses): 401 off this machine, B as unknown as no business."""
    from tests.metrics_data import make_metrics

    for business in (A, B):
        load_frame(seeded, reference_frame, business, "daily", ctr=False)
        seeded.replace_metrics(business, "daily", make_metrics(list(reference_frame["image_name"][:60]), days=10))
    client = app_client(settings, seeded)
    path = "/api/trend?business={}&source=daily&feature=text&period=day"
    assert client.get(path.format(A), environ_base=REMOTE).status_code == 401
    for who in ("read_a", "all"):
        mine = client.get(path.format(A), headers=bearer(tokens[who]), environ_base=REMOTE)
        assert mine.status_code == 200 and len(mine.get_json()["points"]) == 10
    assert client.get(path.format(B), headers=bearer(tokens["all"]), environ_base=REMOTE).status_code == 200
    with caplog.at_level(logging.WARNING, logger="creatives.access"):
        hidden = client.get(path.format(B), headers=bearer(tokens["read_a"]), environ_base=REMOTE)
    unknown = client.get(path.format("Nobody Inc"), headers=bearer(tokens["read_a"]), environ_base=REMOTE)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.get_data(as_text=True).replace(B, "X") == unknown.get_data(as_text=True).replace("Nobody Inc", "X")
    assert "actor=reader-a route=GET /api/trend" in caplog.text and tokens["read_a"] not in caplog.text


def test_drift_of_another_business_build_answers_as_an_unknown_build(settings, tokens, seeded):
    client = app_client(settings, seeded)
    mine, theirs = seeded.resolve_build(A, SOURCE), seeded.resolve_build(B, SOURCE)
    path = "/api/drift?business={}&source=vision&from_build={}&to_build={}"
    hidden = client.get(path.format(A, mine, theirs), headers=bearer(tokens["read_a"]))
    unknown = client.get(path.format(A, mine, 999999), headers=bearer(tokens["read_a"]))
    assert hidden.status_code == unknown.status_code == 404
    assert B not in hidden.get_data(as_text=True)
    assert hidden.get_json()["error"] == unknown.get_json()["error"]
    # Without the scope (every business) it is the usual 400 naming the other dataset.
    assert client.get(path.format(A, mine, theirs), headers=bearer(tokens["all"])).status_code == 400


def test_version_of_a_scoped_token_changes_only_with_its_own_data(settings, tokens, seeded):
    client = app_client(settings, seeded)

    def version(who):
        return client.get("/api/version", headers=bearer(tokens[who]), environ_base=REMOTE).get_json()["version"]

    mine, everyone = version("read_a"), version("all")
    assert everyone == seeded.version()
    assert put_ctr(client, B).status_code == 200  # another business's write, from this machine
    assert version("read_a") == mine and version("all") != everyone
    assert put_ctr(client, A).status_code == 200
    assert version("read_a") != mine


def test_datasets_lists_only_the_tokens_pairs(settings, tokens, seeded):
    client = app_client(settings, seeded)
    listed = client.get("/api/datasets", headers=bearer(tokens["read_a"]), environ_base=REMOTE).get_json()
    assert [d["business"] for d in listed["datasets"]] == [A]
    everyone = client.get("/api/datasets", headers=bearer(tokens["all"]), environ_base=REMOTE).get_json()
    assert sorted(d["business"] for d in everyone["datasets"]) == [A, B]


# -- writes ----------------------------------------------------------------------------------------


def put_ctr(client, business, headers=None, **kwargs):
    body = json.dumps({"img_new.png": 0.5})
    head = {"Business": business, "Image-Source": SOURCE, **(headers or {})}
    return client.put("/api/ctr", data=body, headers=head, **kwargs)


@pytest.mark.parametrize("who", ["read_a", "write_a"])
def test_a_write_out_of_scope_is_403_and_stores_nothing(settings, tokens, seeded, who, caplog):
    client = app_client(settings, seeded)
    before = snapshot(seeded)
    with caplog.at_level(logging.WARNING, logger="creatives.access"):
        response = put_ctr(client, B, bearer(tokens[who]), environ_base=REMOTE)
    assert response.status_code == 403
    assert set(response.get_json()) == {"error", "details"}
    assert snapshot(seeded) == before
    assert f"business={B!r}" in caplog.text and tokens[who] not in caplog.text
    if who == "read_a":  # a read token writes nowhere, its own business included
        assert put_ctr(client, A, bearer(tokens[who]), environ_base=REMOTE).status_code == 403
        assert snapshot(seeded) == before


def _write_requests():
    """(method, path, body, extra headers) of every write route, each a valid write of one image."""
    from tests.image_samples import png, zip_of

    day = {"2026-03-01": {"clicks": 3, "impressions": 100}}
    return [
        ("PUT", "/api/features", json.dumps({"img_new.png": {"text": 0.9}}), {}),
        ("PUT", "/api/ctr", json.dumps({"img_new.png": 0.5}), {}),
        ("PATCH", "/api/ctr", json.dumps({"img_new.png": 0.5}), {}),
        # Dated metrics go to a source of their own: the stored one holds a plain CTR set.
        ("PUT", "/api/metrics", json.dumps({"img_new.png": day}), {"Image-Source": "daily"}),
        ("PATCH", "/api/metrics", json.dumps({"img_new.png": day}), {"Image-Source": "daily"}),
        ("PUT", "/api/images/img_new.png", png(40, 30), {}),
        ("PUT", "/api/images", zip_of({"img_new.png": png(40, 30)}), {"Content-Type": "application/zip"}),
        ("DELETE", "/api/images/kept.png", b"", {}),
    ]


WRITES = _write_requests()


@pytest.mark.parametrize("method, path, body, extra", WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES])
def test_every_write_route_refuses_a_business_outside_the_scope_and_stores_nothing(
    settings, tokens, seeded, method, path, body, extra, caplog
):
    from data.thumbnails import make_thumbnail
    from tests.image_samples import png
    from tests.tables import snapshot as every_row

    for business in (A, B):
        seeded.put_thumbnails(business, SOURCE, [("kept.png", make_thumbnail(png(40, 30)))])
    client = app_client(settings, seeded, access="tokens")

    def send(business, who):
        headers = {"Business": business, "Image-Source": SOURCE, **extra, **bearer(tokens[who])}
        return client.open(path, method=method, data=body, headers=headers, environ_base=REMOTE)

    def data_rows():  # every row but the tokens' last use, which a request may record
        return {table: rows for table, rows in every_row(seeded).items() if table != "access_tokens"}

    before = data_rows()
    with caplog.at_level(logging.WARNING, logger="creatives.access"):
        refused = [send(B, "write_a"), send(A, "read_a")]
    for response in refused:
        assert response.status_code == 403, response.get_data(as_text=True)
        assert set(response.get_json()) == {"error", "details"}
    assert data_rows() == before
    assert caplog.text.count("refused 403: actor=jenkins-a") == 1 and f"business={B!r}" in caplog.text
    assert tokens["write_a"] not in caplog.text and tokens["read_a"] not in caplog.text
    # The same write within the token's scope is stored (the refusal was the scope, not the request).
    assert send(A, "write_a").status_code in (200, 201)
    assert data_rows() != before


def test_a_write_token_writes_its_business_from_anywhere(settings, tokens, seeded):
    client = app_client(settings, seeded, access="tokens")
    assert put_ctr(client, A, bearer(tokens["write_a"]), environ_base=REMOTE).status_code == 200
    assert seeded.ctr(A, SOURCE)["image"].tolist() == ["img_new.png"]


def test_ingest_token_writes_every_business(settings, tokens, seeded):
    client = app_client(settings, seeded, ingest_token=INGEST)
    for business in (A, B, "Charlie"):
        assert put_ctr(client, business, bearer(INGEST), environ_base=REMOTE).status_code == 200
    assert client.get("/api/builds?business=Bravo%20Shoes&source=vision", headers=bearer(INGEST)).status_code == 200
    before = snapshot(seeded)
    assert put_ctr(client, A).status_code == 401  # INGEST_TOKEN set: loopback needs it too, as before
    assert put_ctr(client, A, bearer("wrong")).status_code == 401
    assert snapshot(seeded) == before


@pytest.mark.parametrize("access", ["tokens", "public"])
def test_writes_without_a_token(settings, seeded, access):
    client = app_client(settings, seeded, access=access)
    before = snapshot(seeded)
    remote = put_ctr(client, A, environ_base=REMOTE)
    assert remote.status_code == (401 if access == "tokens" else 403)
    assert put_ctr(client, A).status_code == (401 if access == "tokens" else 200)
    if access == "tokens":
        assert snapshot(seeded) == before


# -- the page --------------------------------------------------------------------------------------


def sign_in(client, token, headers=None, **kwargs):
    form = {"token": token, "next": "/?business=x"}
    return client.post("/login", data=form, headers={**ORIGIN, **(headers or {})}, **kwargs)


def session_cookie(client):
    return client.get_cookie(SESSION_COOKIE)


def test_page_without_a_session_is_a_sign_in_form_and_nothing_else(settings, tokens, seeded):
    client = app_client(settings, seeded)
    page = client.get(f"/?business={B}&source=vision", environ_base=REMOTE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'<input type="password" id="token" name="token"', html) and '<label for="token"' in html
    assert html.count("<input") == 2  # the token and the hidden return path
    # Its icon is the open one: a browser asking /favicon.ico would get this form, and log a refusal.
    assert '<link rel="icon" type="image/x-icon" href="/_favicon.ico">' in html
    assert client.get("/_favicon.ico", environ_base=REMOTE).status_code == 200
    assert "Acme" not in html and "Reference" not in html
    # The URL asked for comes back only as where to return after signing in.
    assert html.count("Bravo") == 1 and 'name="next" value="/?business=Bravo Shoes&amp;source=vision"' in html
    for path in ("/_dash-layout", "/_dash-dependencies"):
        answer = client.get(path, environ_base=REMOTE)
        assert answer.status_code == 401 and A not in answer.get_data(as_text=True)
    outputs = [(ids.SOURCE, "options"), (ids.SOURCE, "value")]
    inputs, state = [(ids.BUSINESS, "value", A), (ids.VERSION, "data", "1")], [(ids.SOURCE, "value", None)]
    local = _dash_post(client, outputs, inputs, state)
    assert local.status_code == 200 and local.get_json()["response"][ids.SOURCE]["value"] == SOURCE
    forged = client.post("/_dash-update-component", json={}, environ_base=REMOTE)
    assert forged.status_code == 401


def test_sign_in_sets_a_protected_cookie_and_shows_only_the_tokens_data(settings, tokens, seeded):
    client = app_client(settings, seeded)
    refused = sign_in(client, "cat_wrong", environ_base=REMOTE)
    assert refused.status_code == 401 and session_cookie(client) is None
    # The field is marked invalid and names the message (a first visit's form has neither).
    page = refused.get_data(as_text=True)
    assert 'aria-invalid="true"' in page and 'aria-describedby="token-help token-error"' in page
    assert 'id="token-error"' in page and "cat_wrong" not in page
    assert "aria-invalid" not in client.get("/", environ_base=REMOTE).get_data(as_text=True)
    response = sign_in(client, tokens["read_a"], environ_base=REMOTE)
    assert response.status_code == 303 and response.headers["Location"] == "/?business=x"
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie
    assert tokens["read_a"] not in set_cookie
    layout = client.get("/_dash-layout", headers={"Referer": f"http://localhost/?business={B}"}, environ_base=REMOTE)
    text = layout.get_data(as_text=True)
    assert layout.status_code == 200 and A in text and B not in text and "Signed in as" in text
    # The address bar named B: it is replaced, at load, by the view shown (a copied link names A).
    moved = _component_data(layout.get_json(), ids.STALE_BUILD)
    assert moved["replace"] is True and moved["business"] == A and moved["build"] is None
    assert parse_qs(moved["search"].lstrip("?"))["business"] == [A]
    assert client.get("/api/datasets", environ_base=REMOTE).get_json()["datasets"][0]["business"] == A
    # Secure behind HTTPS (directly or through a proxy that says so).
    https = sign_in(client, tokens["read_a"], environ_base=REMOTE, base_url="https://localhost")
    assert "Secure" in https.headers["Set-Cookie"]
    proxied = sign_in(client, tokens["read_a"], environ_base=REMOTE, headers={**ORIGIN, "X-Forwarded-Proto": "https"})
    assert "Secure" in proxied.headers["Set-Cookie"]


def _component_data(node, component_id):
    """The ``data`` of the component ``component_id`` in a serialised Dash layout, else None."""
    if isinstance(node, dict):
        props = node.get("props", {})
        if props.get("id") == component_id:
            return props.get("data")
        children = [props.get("children")] if isinstance(node.get("props"), dict) else list(node.values())
        for child in children:
            found = _component_data(child, component_id)
            if found is not None:
                return found
    elif isinstance(node, list):
        for child in node:
            found = _component_data(child, component_id)
            if found is not None:
                return found
    return None


def _redraw_inputs(business, version):
    controls = {
        ids.BUSINESS: business,
        ids.SOURCE: SOURCE,
        ids.BUILD: CURRENT_BUILD,
        ids.CONFIDENCE: 0.3,
        ids.SPARSITY: [0, 100],
        ids.SHOWN: "25",
        ids.WEIGHTING: "mean",
        ids.COMPARE: None,
    }
    inputs = [(c, "value", v) for c, v in controls.items()]
    window = [(ids.DATE_RANGE, "start_date", None), (ids.DATE_RANGE, "end_date", None)]
    refined = (ids.REFINED, "data", None)
    return inputs + [(ids.VERSION, "data", version), refined, (ids.IMPACT_MODE, "value", "marginal"), *window]


def test_a_forged_callback_naming_another_business_shows_nothing_of_it(settings, tokens, seeded, reference_frame):
    client = app_client(settings, seeded, access="tokens")
    sign_in(client, tokens["read_a"])
    mine = _dash_post(client, REDRAW_OUTPUTS, _redraw_inputs(A, seeded.version()), [(ids.STALE_BUILD, "data", None)])
    assert mine.status_code == 200 and len(unpacked_rows(mine.get_json()["response"][ids.TABLE_ROWS]["data"])) > 0
    theirs = _dash_post(client, REDRAW_OUTPUTS, _redraw_inputs(B, seeded.version()), [(ids.STALE_BUILD, "data", None)])
    assert theirs.status_code == 200
    answer = theirs.get_json()["response"]
    assert unpacked_rows(answer[ids.TABLE_ROWS]["data"]) == []
    assert all(not trace.get("x") for c in ids.CHARTS for trace in answer[c]["figure"]["data"])
    builds = _dash_post(
        client,
        [(ids.BUILD, "options"), (ids.BUILD, "value")],
        [(ids.SOURCE, "value", SOURCE), (ids.VERSION, "data", "1")],
        [(ids.BUSINESS, "value", B), (ids.BUILD, "value", None)],
    )
    assert builds.get_json()["response"][ids.BUILD]["options"] == []
    download = [(ids.DOWNLOAD_SUMMARY, "data")], [(ids.DOWNLOAD_SUMMARY_BUTTON, "n_clicks", 1)]
    mine = _dash_post(client, *download, _controls(business=A))
    assert mine.status_code == 200 and "text" in mine.get_json()["response"][ids.DOWNLOAD_SUMMARY]["data"]["content"]
    theirs = _dash_post(client, *download, _controls(business=B))
    assert theirs.status_code == 200 and theirs.get_json()["response"] == {}  # nothing to download


def test_scoped_store_refuses_every_read_outside_the_scope(settings, tokens, seeded):
    from ingest.scoped import ScopedStore

    scoped = ScopedStore(seeded, settings.with_overrides(access="tokens"))
    app = create_app(settings, seeded)
    theirs = seeded.resolve_build(B, SOURCE)
    with app.server.test_request_context("/", headers=bearer(tokens["read_a"])):
        assert list(scoped.datasets()["business"]) == [A]
        assert scoped.dataset(A, SOURCE).images_with_ctr > 0 and scoped.build_pair(seeded.resolve_build(A, SOURCE))
        for read in (scoped.builds, scoped.ctr, scoped.resolve_build, scoped.dataset, scoped.load_build):
            with pytest.raises(UnknownDataset, match="no build for business"):
                read(B, SOURCE)
        with pytest.raises(UnknownBuild, match=f"build {theirs} is not a stored build"):
            scoped.build_pair(theirs)
    with app.server.test_request_context("/"):  # no credential under ACCESS=tokens: nothing at all
        assert scoped.datasets().empty and scoped.version() == "0"
        with pytest.raises(UnknownDataset):
            scoped.builds(A, SOURCE)
    assert scoped.datasets().empty  # outside any request


def test_sign_out_and_revocation_end_the_session(settings, tokens, seeded):
    client = app_client(settings, seeded, access="tokens")
    sign_in(client, tokens["read_a"])
    assert client.get("/_dash-layout").status_code == 200
    assert client.post("/logout").status_code == 403  # no Origin: refused (CSRF)
    assert client.post("/logout", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/_dash-layout").status_code == 200
    out = client.post("/logout", headers=ORIGIN)
    assert out.status_code == 303 and session_cookie(client) is None
    assert client.get("/_dash-layout").status_code == 401

    sign_in(client, tokens["read_a"])
    assert client.get("/api/version").status_code == 200
    seeded.revoke_token("reader-a")
    ended = client.get("/api/version")
    assert ended.status_code == 401 and session_cookie(client) is None
    assert 'name="token"' in client.get("/").get_data(as_text=True)


def test_a_session_of_a_revoked_token_stays_ended_when_its_name_is_reused(settings, seeded):
    client = app_client(settings, seeded, access="tokens")
    sign_in(client, make_token(seeded, "analyst", READ, A))
    old = session_cookie(client).value
    seeded.revoke_token("analyst")
    make_token(seeded, "analyst", READ, A, B)  # same name, new token: the old session must not become it
    client.set_cookie(SESSION_COOKIE, old)
    assert client.get("/api/datasets").status_code == 401


def test_get_login_and_logout_never_serve_the_page_shell(settings, tokens, seeded):
    """/login reloaded after a refused token shows the form again; GET /logout ends nothing."""
    client = app_client(settings, seeded, access="tokens")
    form = client.get("/login?next=/%3Fbusiness%3Dx")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="token"' in html and "_dash" not in html
    assert 'name="next" value="/?business=x"' in html
    assert 'value="/"' in client.get("/login?next=https://evil.example/").get_data(as_text=True)
    sign_in(client, tokens["read_a"])
    signed_in = client.get("/login?next=/%3Fbusiness%3Dx")
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/?business=x"
    out = client.get("/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/" and session_cookie(client) is not None
    assert client.get("/_dash-layout").status_code == 200


def test_sign_in_from_another_site_is_refused(settings, tokens, seeded):
    client = app_client(settings, seeded)
    response = client.post("/login", data={"token": tokens["read_a"]}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and session_cookie(client) is None
    assert client.post("/login", data={"token": tokens["read_a"]}).status_code == 403


def test_the_session_key_is_shared_by_apps_on_one_database(settings, tokens, seeded):
    first, second = create_app(settings, seeded).server, create_app(settings, seeded).server
    for server in (first, second):  # the key is read (or made) in the database on first use
        server.test_client().get("/", environ_base=REMOTE)
    assert first.secret_key == second.secret_key and len(first.secret_key) == 32
    third = create_app(settings.with_overrides(secret_key="k"), seeded).server
    third.test_client().get("/", environ_base=REMOTE)
    assert third.secret_key == "k"
    client = first.test_client()
    sign_in(client, tokens["read_a"], environ_base=REMOTE)
    other = second.test_client()
    other.set_cookie(SESSION_COOKIE, session_cookie(client).value)
    assert other.get("/_dash-layout", environ_base=REMOTE).status_code == 200
    forged = second.test_client()
    forged.set_cookie(SESSION_COOKIE, session_cookie(client).value[:-2] + "xx")
    assert forged.get("/_dash-layout", environ_base=REMOTE).status_code == 401


@pytest.mark.parametrize("remote", ["10.0.0.8", "2001:db8::1"])
def test_access_local_from_another_address_needs_a_token(settings, tokens, seeded, remote):
    client = app_client(settings, seeded)
    where = {"REMOTE_ADDR": remote}
    assert client.get("/api/summary?business=Bravo%20Shoes&source=vision", environ_base=where).status_code == 401
    assert 'name="token"' in client.get("/", environ_base=where).get_data(as_text=True)
    forwarded = client.get("/api/datasets", headers={"X-Forwarded-For": remote})
    assert forwarded.status_code == 401
    assert client.get("/api/datasets", headers={"Host": "rebind.evil.example"}).status_code == 401
    ok = client.get("/api/datasets", headers=bearer(tokens["read_a"]), environ_base=where)
    assert ok.status_code == 200


# -- several workers -------------------------------------------------------------------------------


def _http(port, method, path, body=None, headers=None):
    """(status, headers) of one request on a new connection (so gunicorn may hand it to any worker)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.headers
    finally:
        conn.close()


# Each answer's worker in gunicorn's access log: "served-by=<pid> GET /path HTTP/1.1 status".
ACCESS_LOG = "--access-logfile - --access-logformat 'served-by=%(p)s %(m)s %(U)s %(s)s'"


def _served(server, path: str, status: int) -> set[int]:
    """The workers whose access log lines show ``path`` answered with ``status``."""
    pattern = rf"served-by=<(\d+)> GET {re.escape(path)} {status}"
    return {int(pid) for pid in re.findall(pattern, server.output())}


def _until_every_worker(server, workers: set[int], send, paths: list[tuple[str, int]], most: int = 60) -> None:
    """Call ``send()`` (which asserts its answers) until each worker has answered each (path, status)."""
    import time

    for _ in range(most):
        send()
        time.sleep(0.05)  # the access log line follows the answer
        if all(_served(server, path, status) >= workers for path, status in paths):
            return
    seen = {f"{path} {status}": sorted(_served(server, path, status)) for path, status in paths}
    raise AssertionError(f"not every worker {sorted(workers)} answered: {seen}")


def test_revocation_reaches_every_worker_at_the_next_request(db_url, tmp_path, seeded):
    """Both gunicorn workers serve the token and its session; once revoked, each refuses them at once."""
    from urllib.parse import urlencode

    from tests.servers import gunicorn

    token = make_token(seeded, "reader-a", READ, A)
    with gunicorn(tmp_path, db_url, workers=2, threads=1, ACCESS="tokens", GUNICORN_CMD_ARGS=ACCESS_LOG) as server:
        assert server.wait_ready(2), server.output()[-3000:]
        port, workers = server.port, set(server.worker_pids())
        assert len(workers) == 2
        form = urlencode({"token": token, "next": "/"})
        status, headers = _http(
            port,
            "POST",
            "/login",
            form,
            {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 303, server.output()[-3000:]
        cookie = headers["Set-Cookie"].split(";")[0]
        session, key = {"Cookie": cookie}, bearer(token)
        summary = f"/api/summary?business={A.replace(' ', '%20')}&source=vision"

        def allowed():  # each on a new connection, so that either worker may take it
            assert _http(port, "GET", summary, headers=key)[0] == 200
            assert _http(port, "GET", "/_dash-layout", headers=session)[0] == 200

        def refused():
            assert _http(port, "GET", summary, headers=key)[0] == 401
            status, headers = _http(port, "GET", "/_dash-layout", headers=session)
            assert status == 401 and SESSION_COOKIE in headers.get("Set-Cookie", "")

        _until_every_worker(server, workers, allowed, [("/api/summary", 200), ("/_dash-layout", 200)])
        seeded.revoke_token("reader-a")
        # From the revocation on, no worker answers 200 again: each refuses at its next request.
        _until_every_worker(server, workers, refused, [("/api/summary", 401), ("/_dash-layout", 401)])
        assert "Traceback" not in server.output()
