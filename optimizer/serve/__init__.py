"""``qfreight serve RUN_DIR_OR_FILE``: the dispatcher dashboard (a local web application).

``RUN_DIR_OR_FILE`` is a run folder (with a ``results.json``), a results.json, or a problem file
(solved first, into ``--out``). The server binds 127.0.0.1 unless ``--host`` says otherwise; any
other address needs the token printed at start (:mod:`optimizer.serve.app`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path

from optimizer.errors import InputError, Issue

__all__ = ["BackgroundServer", "add_arguments", "resolve_run", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("target", metavar="RUN_DIR_OR_FILE",
                        help="a run folder or results.json (qfreight solve), or a problem file to solve first")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other "
                                                            "address requires the token printed at start)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    parser.add_argument("--token", help="access token (default: none on 127.0.0.1, a random one elsewhere)")
    parser.add_argument("--config", help="config file for re-plans (TOML; [replan] and the usual tables)")
    parser.add_argument("--backend", help="backend of the solve and the re-plans (overrides [solver] backend)")
    parser.add_argument("--time-limit", type=float, help="seconds per solve and re-plan (overrides [solver] time_limit)")
    parser.add_argument("--problem", help="the problem file, when the results do not name a readable one")
    parser.add_argument("--out", help="where a problem file's solve is written (default results/<problem>-<backend>)")


def resolve_run(target: str | Path, *, config, out: str | None = None) -> Path:
    """The run folder for ``target``; a problem file is solved first (its results written to ``out``)."""
    path = Path(target)
    if path.is_dir():
        if not (path / "results.json").is_file():
            raise InputError(str(path), Issue("(folder)", "no results.json in this folder"))
        return path
    if not path.is_file():
        raise InputError(str(path), Issue("(file)", "no such file or folder"))
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(str(path), Issue("(file)", f"not readable JSON: {exc}")) from None
        if isinstance(doc, dict) and "plan" in doc:
            return path.parent
    from optimizer.freight.problem import load_problem
    from optimizer.report.results import write_json_atomic
    from optimizer.solving.pipeline import solve_problem

    problem = load_problem(path)
    print(f"solving {path} with {config.solver.backend} first ({config.solver.time_limit:g} s at most)", flush=True)
    outcome = solve_problem(problem, config)
    folder = Path(out or Path("results") / f"{problem.name}-{config.solver.backend}")
    write_json_atomic(folder / "results.json", outcome.to_json())
    return folder


class BackgroundServer:
    """A uvicorn server in a daemon thread (for tests and embedding); ``url`` once started."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="qfreight-serve")
        self.host = host

    def start(self, timeout: float = 20.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run(args) -> int:
    """``qfreight serve``: serve until Ctrl-C."""
    import uvicorn

    from optimizer.serve.app import LOOPBACK, create_app
    from optimizer.serve.store import RunStore
    from optimizer.solving.replan import _config_from_args

    if not 0 <= args.port <= 65535:
        raise InputError("command line", Issue("--port", "must be in 0..65535", args.port))
    args.seed, args.change_cost = None, None
    config, settings = _config_from_args(args)
    folder = resolve_run(args.target, config=config, out=args.out)
    store = RunStore(folder, problem_file=args.problem)
    store.run(0)  # a bad run folder fails here, with its message, not on the first request
    token = args.token
    if args.host not in LOOPBACK and not token:
        token = secrets.token_urlsafe(24)
    app = create_app(store, config=config, settings=settings, host=args.host, token=token)
    port = args.port
    if port == 0:  # pick a free port now, so the address printed is the one served
        import socket

        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
            probe.bind((args.host, 0))
            port = probe.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    suffix = f"/?token={token}" if token else "/"
    print(f"qfreight dashboard for {folder} on http://{host}:{port}{suffix}", flush=True)
    if token and args.host not in LOOPBACK:
        print("  this address is reachable from other machines: the token above is required", flush=True)
    uvicorn.run(app, host=args.host, port=port, log_level="warning")
    return 0
