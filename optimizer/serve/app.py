"""The dispatcher dashboard as a Starlette (ASGI) application.

Security, by design:

- The server binds 127.0.0.1 unless told otherwise; on a loopback address the ``Host`` header
  must name a loopback host (no DNS rebinding). Any other address needs a token (printed at
  start, as Jupyter does): ``?token=...`` once (it is then kept in an HttpOnly, SameSite=Strict
  cookie) or ``Authorization: Bearer ...``.
- ``POST`` requests must be ``application/json`` and, when the browser sends an ``Origin``,
  come from the dashboard's own origin, so another web page cannot start a re-plan.
- Every response carries a strict Content-Security-Policy: no remote resources, the page's one
  inline script and style allowed by their SHA-256 hashes, ``connect-src 'self'``. The page sets
  every name from a file as text (``textContent``), never as markup.
- Only the run folder's own files are served (:meth:`optimizer.serve.store.RunStore.file`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from optimizer.errors import InputError, Issue
from optimizer.serve.page import PAGE
from optimizer.serve.store import FILE_TYPES, RunStore

__all__ = ["API_DOC", "LOOPBACK", "content_security_policy", "create_app"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_COOKIE = "qfreight_token"

API_DOC = """# qfreight dashboard: JSON endpoints

Every endpoint answers JSON (UTF-8) unless stated. Times are ISO 8601 date-times in the
problem's own convention (with its UTC offset, if it has one). Off a loopback address every
request needs the token (`?token=...`, the cookie it sets, or `Authorization: Bearer ...`).

| method | path | answer |
|---|---|---|
| GET | `/api` | this page (text/markdown) |
| GET | `/api/versions` | `{"problem": name, "versions": [{"id", "label", "folder", "kind", "at", "parent", "feasible", "changes"}]}`; version 0 is the solve, version k the folder `replan-0k` |
| GET | `/api/versions/{id}` | the version's view: `problem` (name, start, end, slots, tz), `hubs`, `corridors` (with `trains` and `load` = busiest direction's trains / (paths per slot x slots)), `disruptions` (weather in force; `from_event` marks re-plan events), `outages`, `shipments` (plan, legs, stops, `late_hours`, `risk`), `trains` (batches: corridor, from, to, enter, exit, trains, wagons, light), `at_risk`, `kpis`, `baseline`, `baseline_kpis`, `stages` (the solve's stage records; `pieces[].contribution` is what a device found beyond the stand-ins), `device_contribution`, and for re-plans `at`, `events`, `diff`, `keep`, `changes`, `parent` |
| POST | `/api/replan` | body `{"version": id, "at": time, "events": [event, ...], "time_limit": s?, "change_cost_cny": x?}`; events as in event files (`{"kind": "closure", "corridor", "start", "end"}`, `{"kind": "slowdown", ..., "speed_factor"}`, `{"kind": "release", "shipment", "release"}`, `{"kind": "due", ...}`, `{"kind": "cutoff", ...}`, `{"kind": "locomotive", "hub", "count", "start", "end"?}`, `{"kind": "shipment", ...}`); answers 202 `{"job": id}`, 400 `{"error", "issues": [{"field", "message", "value"}]}` for bad input, 409 while another re-plan runs |
| GET | `/api/jobs/{job}` | `{"id", "version", "state": "queued"/"running"/"done"/"error", "messages": [...], "result_version", "error", "issues", "seconds"}`; events that contradict the frozen part end in `error` with the issues naming the event and field |
| GET | `/api/files` | `{"files": [relative paths]}`: the run folder's own files (json, csv, md, txt, toml, png) |
| GET | `/files/{path}` | one of those files (text types as plain text); anything else, or a path outside the run, is 404 |
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(page: str = PAGE) -> str:
    """The CSP for ``page``: its inline script and style by hash, nothing remote."""
    scripts = [_sha256(m) for m in re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)]
    styles = [_sha256(m) for m in re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)]
    return ("default-src 'none'; script-src " + " ".join(scripts) + "; style-src " + " ".join(styles)
            + "; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")


def _host_name(header: str) -> str:
    """The host name of a ``Host`` header, without the port (IPv6 without brackets)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0].lower()
    return header.rsplit(":", 1)[0].lower()


def _issues(exc: InputError) -> list[dict[str, object]]:
    return [{"field": i.field, "message": i.message, "value": None if i.value is None else str(i.value)}
            for i in exc.issues]


def create_app(store: RunStore, *, config=None, settings=None, host: str = "127.0.0.1",
               token: str | None = None, max_time_limit: float = 600.0) -> Starlette:
    """The dashboard over ``store``. ``token``: required on every request when given."""
    from optimizer.solving.config import Config
    from optimizer.solving.replan import ReplanSettings

    config = config or Config()
    settings = settings or ReplanSettings()
    csp = content_security_policy()
    loopback = host in LOOPBACK

    class Guard(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next):
            if loopback and _host_name(request.headers.get("host") or "") not in LOOPBACK:
                return PlainTextResponse("unknown host", status_code=421)
            set_cookie = False
            if token is not None:
                given = request.query_params.get("token") or request.cookies.get(_COOKIE) or \
                    request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                if not given or not hmac.compare_digest(given.encode(), token.encode()):
                    return PlainTextResponse("a token is required: open the address the server printed at start",
                                             status_code=403)
                set_cookie = request.query_params.get("token") is not None
            if request.method == "POST":
                kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind != "application/json":
                    return JSONResponse({"error": "expected Content-Type: application/json"}, status_code=415)
                origin = request.headers.get("origin")
                if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
                    return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
            response: Response = await call_next(request)
            response.headers["Content-Security-Policy"] = csp
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Cache-Control"] = "no-store"
            if set_cookie:
                response.set_cookie(_COOKIE, token, httponly=True, samesite="strict")
            return response

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def api_doc(request: Request) -> Response:
        return PlainTextResponse(API_DOC, media_type="text/markdown; charset=utf-8")

    async def versions(request: Request) -> Response:
        return JSONResponse({"problem": store.run(0).problem.name, "versions": store.versions()})

    async def version(request: Request) -> Response:
        try:
            return JSONResponse(store.view(int(request.path_params["vid"])))
        except KeyError:
            return JSONResponse({"error": "no such version"}, status_code=404)

    async def files(request: Request) -> Response:
        return JSONResponse({"files": store.files()})

    async def file(request: Request) -> Response:
        path = store.file(request.path_params["path"])
        if path is None:
            return PlainTextResponse("not a file of this run", status_code=404)
        return FileResponse(path, media_type=FILE_TYPES[path.suffix.lower()])

    async def job(request: Request) -> Response:
        found = store.jobs.get(request.path_params["jid"])
        if found is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse(found.to_json())

    async def start_replan(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        try:
            version_id, at, events, run_config, run_settings = _parse_request(store, body, config, settings,
                                                                           max_time_limit)
        except InputError as exc:
            return JSONResponse({"error": "bad re-plan request", "issues": _issues(exc)}, status_code=400)
        try:
            started = store.start_replan(version_id, events, at=at, config=run_config, settings=run_settings)
        except RuntimeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"job": started.id}, status_code=202)

    routes = [
        Route("/", page),
        Route("/api", api_doc),
        Route("/api/versions", versions),
        Route("/api/versions/{vid:int}", version),
        Route("/api/files", files),
        Route("/files/{path:path}", file),
        Route("/api/jobs/{jid}", job),
        Route("/api/replan", start_replan, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard)])


def _parse_request(store: RunStore, body: object, config, settings, max_time_limit: float):
    """(version, at minute, events, config, settings) of a re-plan request; InputError names the field."""
    from optimizer.freight.events import parse_events
    from optimizer.solving.replan import _parse_at, parse_replan_section

    source = "request"
    if not isinstance(body, Mapping):
        raise InputError(source, Issue("(body)", "expected a JSON object"))
    unknown = set(body) - {"version", "at", "events", "time_limit", "change_cost_cny"}
    if unknown:
        raise InputError(source, Issue(min(unknown), "unknown field; expected version, at, events, "
                                                           "time_limit, change_cost_cny"))
    vid = body.get("version", 0)
    if isinstance(vid, bool) or not isinstance(vid, int) or vid not in store.folders():
        raise InputError(source, Issue("version", "no such version", vid))
    run = store.run(vid)
    if not isinstance(body.get("at"), str):
        raise InputError(source, Issue("at", "expected an ISO date-time", body.get("at")))
    try:
        at = _parse_at(run.problem, body["at"], field="at")
    except InputError as exc:
        raise InputError(source, exc.issues) from None
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise InputError(source, Issue("events", "expected a non-empty list of events"))
    stream = parse_events({"events": events}, source=source).stream(run.problem)
    limit = body.get("time_limit", config.solver.time_limit)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or \
            not 0.1 <= limit <= max_time_limit:
        raise InputError(source, Issue("time_limit", f"expected seconds in [0.1, {max_time_limit:g}]", limit))
    run_config = config.override(time_limit=float(limit))
    run_settings = settings if "change_cost_cny" not in body else \
        parse_replan_section({"change_cost_cny": body["change_cost_cny"]}, source=source)
    return vid, at, stream, run_config, run_settings
