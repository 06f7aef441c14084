"""The dispatcher dashboard, end to end in a real headless Chromium (Playwright driving the
system browser), plus its HTTP security rules."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from pathlib import Path

import pytest

from optimizer.freight.problem import load_problem
from optimizer.serve import BackgroundServer
from optimizer.serve.app import create_app
from optimizer.serve.store import RunStore
from optimizer.solving.config import Config
from optimizer.solving.pipeline import solve_problem
from tests.conftest import PROBLEMS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CONFIG = Config().override(backend="cpsat", time_limit=10.0, seed=0)
HOSTILE_HUB = '<img src=x onerror="window.__pwned=1">Chengdu'
HOSTILE_COMMODITY = "<script>window.__pwned=2</script>fruit & 'more'"
HOSTILE_ID = "S3<i&\"'"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """tiny.toml with hostile names, solved by CP-SAT, as a run folder."""
    import tomli_w

    folder = tmp_path_factory.mktemp("dashboard")
    doc = tomllib.loads((PROBLEMS / "tiny.toml").read_text())
    doc["problem"]["description"] = "<b>not bold</b> & friends"
    doc["hubs"][0]["name"] = HOSTILE_HUB
    doc["shipments"][2]["commodity"] = HOSTILE_COMMODITY
    doc["shipments"][2]["id"] = HOSTILE_ID
    problem_file = folder / "problem.toml"
    problem_file.write_text(tomli_w.dumps(doc))
    outcome = solve_problem(load_problem(problem_file), CONFIG)
    assert outcome.feasible
    run = folder / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(outcome.to_json()))
    (run / "notes.md").write_text("# notes\n")
    os.symlink("/etc/hostname", run / "escape.json")
    (folder / "secret.json").write_text('{"secret": true}')
    return run


@pytest.fixture()
def client(run_dir):
    """An HTTP client of the dashboard served on 127.0.0.1 (a real uvicorn server)."""
    import httpx

    server = BackgroundServer(create_app(RunStore(run_dir), config=CONFIG))
    url = server.start()
    with httpx.Client(base_url=url, timeout=30) as http:
        yield http
    server.stop()


def test_only_the_runs_own_files_are_served(client):
    assert client.get("/files/results.json").status_code == 200
    assert client.get("/files/notes.md").headers["content-type"].startswith("text/plain")
    for path in ("/files/../secret.json", "/files/..%2Fsecret.json", "/files/%2e%2e/secret.json",
                 "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/files//etc/passwd", "/files/escape.json",
                 "/files/.%2e/secret.json", "/files/results.json%00.png", "/files/..\\secret.json"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "secret" not in response.text
    listed = client.get("/api/files").json()["files"]
    assert "results.json" in listed and "escape.json" not in listed


def test_security_headers_host_and_post_rules(client, run_dir):
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "connect-src 'self'" in csp
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page.text)  # nothing remote
    assert client.get("/", headers={"host": "evil.example:8765"}).status_code == 421
    body = {"version": 0, "at": "2026-03-02T00:00", "events": [{"kind": "closure", "corridor": "CTU-XIY",
                                                                "start": "2026-03-02T00:00",
                                                                "end": "2026-03-02T08:00"}]}
    assert client.post("/api/replan", content=json.dumps(body), headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/api/replan", json=body, headers={"origin": "http://evil.example"}).status_code == 403
    bad = client.post("/api/replan", json={**body, "events": [{"kind": "closure", "corridor": "NOPE",
                                                               "start": "2026-03-02T00:00", "end": "x"}]})
    assert bad.status_code == 400 and {i["field"] for i in bad.json()["issues"]} == {"events[0].end"}
    doc = client.get("/api").text
    assert "/api/versions/{id}" in doc and "/api/replan" in doc


def test_token_is_required_off_loopback(run_dir):
    import httpx

    # The app as `qfreight serve --host 0.0.0.0` builds it; served here on loopback only.
    app = create_app(RunStore(run_dir), config=CONFIG, host="0.0.0.0", token="s3cret-token")
    server = BackgroundServer(app)
    url = server.start()
    try:
        _check_token(httpx, url)
    finally:
        server.stop()


def _check_token(httpx, url: str) -> None:
    client = httpx.Client(base_url=url, headers={"host": "192.0.2.10:8765"})
    assert client.get("/api/versions").status_code == 403
    assert client.get("/api/versions?token=wrong").status_code == 403
    first = client.get("/?token=s3cret-token")
    assert first.status_code == 200 and "qfreight_token" in first.headers.get("set-cookie", "")
    assert "httponly" in first.headers["set-cookie"].lower() and "samesite=strict" in first.headers["set-cookie"].lower()
    assert client.get("/api/versions").status_code == 200  # the cookie now carries it
    assert httpx.get(url + "/api/versions", headers={"authorization": "Bearer s3cret-token"}).status_code == 200


def test_dashboard_end_to_end_in_headless_chromium(run_dir):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install the system Chromium (`apt-get install -y chromium`; "
                    ".ci/run does this in CI)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download "
                                                                       "needed: the system Chromium is used)")
    before = hashlib.sha256((run_dir / "results.json").read_bytes()).hexdigest()
    store = RunStore(run_dir)
    server = BackgroundServer(create_app(store, config=CONFIG))
    url = server.start()
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            remote: list[str] = []
            page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(url) else None)
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)

            # Map, Gantt and KPI tiles render.
            assert page.locator("#map circle.hub").count() == 3
            assert page.locator("#map line.corridor").count() == 2
            assert page.locator("#gantt g.shipment").count() == 3
            assert page.locator("#gantt rect.leg").count() >= 3
            assert page.locator("#gantt rect.batch").count() >= 2
            assert page.locator("#tiles .tile").count() == 6
            assert page.locator("#tiles .tile[data-kpi='on_time_share'] .value").inner_text() not in ("", "-")
            assert "stand-ins" in page.locator("#quantum").inner_text() or "quantum share" in \
                page.locator("#quantum").inner_text()

            # Hostile names are shown as text, never run or parsed.
            assert page.evaluate("window.__pwned") is None
            assert page.locator("img").count() == 0 and page.locator("script").count() == 1
            assert HOSTILE_HUB in page.locator("#map text.hub-label").all_text_contents()
            assert any(HOSTILE_COMMODITY in t for t in page.locator("#gantt g.shipment text").all_text_contents())
            assert "<b>not bold</b>" in page.locator("#subtitle").inner_text()
            assert HOSTILE_ID in page.locator("#risk td").all_text_contents()
            assert any(t.startswith(HOSTILE_ID + " (") for t in page.locator("#ev-shipment option").all_text_contents())
            assert page.locator("i, b").count() == 0  # no element was made from a name
            assert page.locator(f"#gantt g.shipment[data-shipment='{HOSTILE_ID.replace(chr(39), chr(92) + chr(39))}']").count() == 1

            # Close Chengdu-Xi'an through the form and re-plan.
            v0 = store.view(0)
            on_ctu_xiy = {s["id"] for s in v0["shipments"] if any(leg["corridor"] == "CTU-XIY" for leg in s["legs"])}
            assert on_ctu_xiy
            page.select_option("#ev-kind", "closure")
            page.select_option("#ev-corridor", "CTU-XIY")
            page.fill("#ev-start", "2026-03-02T00:00")
            page.fill("#ev-end", "2026-03-02T08:00")
            page.click("#add-event")
            assert "CTU-XIY closed" in page.locator("#pending").inner_text()
            page.fill("#replan-at", "2026-03-02T00:00")
            page.click("#replan")
            page.wait_for_selector("body[data-version='1']", timeout=60_000)
            assert "re-plan done" in page.locator("#progress").inner_text()

            v1 = store.view(1)
            moved = {s["id"] for s in v1["shipments"]
                     if (s.get("depart"), s["status"]) != next((o.get("depart"), o["status"]) for o in v0["shipments"]
                                                               if o["id"] == s["id"])}
            assert moved and moved <= on_ctu_xiy | {s["id"] for s in v0["shipments"] if s["status"] == "deferred"}
            for s in v1["shipments"]:
                for leg in s["legs"]:
                    if leg["corridor"] == "CTU-XIY":
                        assert leg["enter"] >= "2026-03-02T08:00"
            listed = set(page.locator("#diff tbody tr").evaluate_all("rows => rows.map(r => r.dataset.shipment)"))
            assert listed == moved
            assert page.locator("#map line.closed").count() >= 1
            assert page.locator("#gantt line.at-line").count() == 1

            # The previous plan stays available, and nothing written before is changed.
            page.select_option("#version", "0")
            page.wait_for_selector("body[data-version='0']")
            assert page.locator("#diff-panel").is_hidden()
            assert hashlib.sha256((run_dir / "results.json").read_bytes()).hexdigest() == before
            assert (run_dir / "replan-01" / "results.json").is_file()

            # A request for a file outside the run is refused, from the browser too.
            assert page.request.get(url + "/files/%2e%2e/secret.json").status == 404
            assert page.request.get(url + "/files/replan-01/problem.json").status == 200
            assert not errors, errors
            assert not remote, remote
            browser.close()
    finally:
        server.stop()
