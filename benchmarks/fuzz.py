"""Hostile inputs through the real CLI: mutated problem files, QUBO files and config files.

Every mutant goes through ``qfreight validate`` (problem files) and then, when accepted,
``qfreight solve --time-limit LIMIT``; QUBO files through ``solve --backend anneal``; configs
through ``solve problems/tiny.toml --config``. Each command runs in a forked child of a process
that imported qfreight once (so a mutant costs milliseconds, not an interpreter start), with a
memory cap, one at a time (the time limits are contracts; parallel runs would blur them). Counted:

- tracebacks: any exception escaping ``main`` (every bad input must be an exit-2 message);
- hangs: a command still running after 3 x the time limit plus a start-up allowance;
- disagreements: ``validate`` accepted a file that ``solve`` then refused with exit 2;
- exit codes other than 0, 1, 2 (bad input or a solver that cannot run), 130.

Usage::

    python benchmarks/fuzz.py --mutants 10000 --seed 0 --time-limit 2
    python benchmarks/fuzz.py --quick          # 300 mutants, for a smoke run

It prints the counts per kind and the distinct failure signatures, and writes
``results/fuzz-<seed>-<mutants>.json``. Target: 0 tracebacks and 0 hangs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import resource
import select
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tomli_w  # noqa: E402

from optimizer.cli import main  # noqa: E402

#: Seconds allowed on top of 3 x the time limit before a command counts as a hang: the forked
#: child imports the backend it needs and compiles numba kernels on first use.
STARTUP_ALLOWANCE = 20.0
MEMORY_CAP = 6 * 2**30

HOSTILE = [0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 1e308, -1e308, 1e-308, 0.5, -0.0,
           float("inf"), float("-inf"), "", " ", "\ud800", "a\x00b", "x" * 300, "../../x", "/abs/path", "<script>",
           "=cmd|' /C calc'!A0", True, False, [], {}, [1, 2], {"a": 1}, "2026-03-02T06:00", "2026-03-02T06:00+08:00",
           "not a date", datetime(2026, 3, 2, 6), datetime(2026, 3, 2, 6, tzinfo=timezone.utc),
           datetime(1, 1, 1), datetime(9999, 12, 31), "électrique", "S1", "CTU", "CGO", "closed"]


def _paths(doc, prefix=()):
    """Every (path, value) in a nested dict/list document."""
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def mutate_document(doc: dict, rng: random.Random) -> dict:
    """One to three structural mutations of a parsed TOML/JSON document."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p, _ in _paths(doc) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = _get(doc, path[:-1])
        key = path[-1]
        op = rng.random()
        if op < 0.55:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif op < 0.65 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.75 and isinstance(parent, list) and parent:
            parent.append(copy.deepcopy(parent[rng.randrange(len(parent))]))  # duplicate an entry (ids)
        elif op < 0.82 and isinstance(parent, list):
            parent.clear()
        elif op < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["colour", "extra", "ID", "speed"])] = rng.choice(HOSTILE)
        else:
            value = parent[key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parent[key] = value * rng.choice([0, -1, 1e6, 1e300, 1e-300, 10**9])
            elif isinstance(value, datetime):
                shift = timedelta(days=rng.choice([-400, -1, 1, 3650, 10**5]))
                try:
                    parent[key] = value + shift
                except OverflowError:  # past year 9999 or before year 1: the calendar's own edge
                    parent[key] = datetime.max if shift.days > 0 else datetime.min
            elif isinstance(value, str):
                parent[key] = value + rng.choice(["", "#", ">", "/", "\x00", "\ud800", " "]) * rng.randint(1, 3)
    return doc


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Text-level damage: truncation, byte flips, duplicated or deleted lines, huge headers."""
    lines = data.split(b"\n")
    op = rng.random()
    if op < 0.2 and data:
        return data[: rng.randrange(len(data))]
    if op < 0.4 and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if op < 0.55 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op < 0.7 and lines:
        del lines[rng.randrange(len(lines))]
    elif op < 0.85 and lines:
        i = rng.randrange(len(lines))
        tokens = lines[i].split()
        if tokens:
            tokens[rng.randrange(len(tokens))] = rng.choice([b"1000000000", b"-1", b"1e400", b"nan", b"x", b"0",
                                                              b"99999999999999999999", b"1.5"])
            lines[i] = b" ".join(tokens)
    else:
        lines.append(rng.choice([b"1 2 3", b"0 0 1e400", b"garbage", b"\xff\xfe", b"-1 -1 -1"]))
    return b"\n".join(lines)


def _encode(doc: dict, suffix: str) -> bytes | None:
    try:
        if suffix == ".json":
            return json.dumps(doc, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
                              ensure_ascii=False).encode("utf-8", "surrogatepass")
        return tomli_w.dumps(doc).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return None  # not representable in that syntax (TOML has no NaN keys, no None)


# ---------------------------------------------------------------------------- running one command
def run_forked(argv: list[str], timeout: float) -> dict:
    """``main(argv)`` in a forked child: exit code, whether an exception escaped, wall time."""
    read_fd, write_fd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        out = {"code": None, "traceback": None}
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                out["code"] = main(argv)
        except SystemExit as exc:  # argparse errors exit 2 with a usage message: fine
            out["code"] = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - exactly what this benchmark looks for
            frames = traceback.extract_tb(exc.__traceback__)
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
            out["traceback"] = f"{type(exc).__name__} at {where}: {str(exc)[:160]}"
        os.write(write_fd, json.dumps(out).encode()[:60000])
        os._exit(0)
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], timeout)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
        return {"code": None, "traceback": None, "hang": True, "seconds": time.perf_counter() - t0}
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - t0
    if not data:  # killed by a signal (memory cap: the allocator aborts) or crashed hard
        return {"code": None, "traceback": f"child died (status {status})", "hang": False, "seconds": seconds}
    out = json.loads(data)
    out.update(hang=False, seconds=seconds)
    return out


# ---------------------------------------------------------------------------- mutant sources
def seeds_problem() -> list[tuple[str, dict]]:
    from optimizer.freight.generate import generate_document

    out = []
    for path in sorted((REPO / "problems").glob("*.toml")):
        import tomllib

        out.append((path.name, tomllib.loads(path.read_text())))
    out.append(("generated.toml", generate_document(hubs=5, shipments=12, seed=1)))
    return out


def seeds_qubo(work: Path) -> list[tuple[str, bytes]]:
    from optimizer.freight.problem import load_problem
    from optimizer.qubo.formats import write_qubo
    from optimizer.solving.config import Config
    from optimizer.solving.pipeline import prepare

    qubo = prepare(load_problem(REPO / "problems" / "tiny.toml"), Config()).qubo
    out = []
    for suffix, fmt in ((".qubo", "qubo"), (".txt", "bqp"), (".triples", "triples"), (".json", "dimod")):
        path = work / f"seed{suffix}"
        write_qubo(qubo, path, fmt)
        out.append((path.name, path.read_bytes()))
    return out


def seeds_config() -> list[tuple[str, dict]]:
    return [("cpsat.toml", {"solver": {"backend": "cpsat", "seed": 1, "time_limit": 2.0}, "model": {"k_routes": 2}}),
            ("anneal.toml", {"solver": {"backend": "anneal"}, "backends": {"anneal": {"num_reads": 8}},
                             "hybrid": {"rounds": 3}, "refine": {"enabled": False}}),
            ("qaoa.toml", {"solver": {"backend": "qaoa"}, "backends": {"qaoa": {"reps": 1, "maxiter": 5}},
                           "executor": {"kind": "local", "workers": 1}})]


# ---------------------------------------------------------------------------- the run
def fuzz(mutants: int, seed: int, time_limit: float, kinds: list[str]) -> dict:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="qfreight-fuzz-"))
    problems = seeds_problem() if "problem" in kinds else []
    qubos = seeds_qubo(work) if "qubo" in kinds else []
    configs = seeds_config() if "config" in kinds else []
    hang_after = 3 * time_limit + STARTUP_ALLOWANCE
    counts = {k: {"mutants": 0, "tracebacks": 0, "hangs": 0, "disagreements": 0, "odd_exit": 0, "accepted": 0}
              for k in kinds}
    failures: dict[str, dict] = {}
    started = time.perf_counter()

    def note(kind: str, what: str, signature: str, path: Path) -> None:
        counts[kind][what] += 1
        entry = failures.setdefault(f"{what}: {signature}", {"count": 0, "example": None})
        entry["count"] += 1
        if entry["example"] is None:
            keep = work / "failures" / f"{what}-{len(failures)}{path.suffix}"
            keep.parent.mkdir(exist_ok=True)
            keep.write_bytes(path.read_bytes())
            entry["example"] = str(keep)
            print(f"new failure: {what}: {signature} (e.g. {keep})", file=sys.stderr, flush=True)

    def check(kind: str, argv: list[str], path: Path, step: str) -> dict:
        res = run_forked(argv, hang_after)
        if res["hang"]:
            note(kind, "hangs", f"{step} ran over {hang_after:.0f} s", path)
        elif res["traceback"]:
            note(kind, "tracebacks", f"{step}: {res['traceback']}", path)
        elif res["code"] not in (0, 1, 2, 130):
            note(kind, "odd_exit", f"{step} exit {res['code']}", path)
        return res

    # Thewalrus's and the QAOA engine's numba kernels compile once per machine (tens of seconds,
    # then cached on disk; the README states it apart from the start-up allowance). Warm them
    # first so that a hang means a hang, and say how long it took.
    for backend in ("cpsat", "anneal", "qaoa", "photonic"):
        warm = run_forked(["solve", str(REPO / "problems" / "tiny.toml"), "--backend", backend, "--time-limit",
                           str(time_limit), "--quiet", "--out", str(work / "out" / f"warm-{backend}")], 600)
        print(f"warm-up {backend}: {warm['seconds']:.1f} s (exit {warm['code']})", file=sys.stderr, flush=True)
    started = time.perf_counter()
    for k in range(mutants):
        kind = kinds[k % len(kinds)]
        counts[kind]["mutants"] += 1
        out_dir = work / "out" / str(k)
        if kind == "problem":
            name, doc = rng.choice(problems)
            suffix = rng.choice([".toml", ".json"])
            data = _encode(mutate_document(doc, rng), suffix)
            if data is None or rng.random() < 0.15:
                data = mutate_bytes(_encode(doc, suffix) or b"", rng)
            path = work / f"m{k}{suffix}"
            path.write_bytes(data)
            res = check(kind, ["validate", str(path)], path, "validate")
            if res.get("code") == 0:
                counts[kind]["accepted"] += 1
                backend = rng.choice(["cpsat", "cpsat", "anneal", "qaoa", "photonic"])
                solved = check(kind, ["solve", str(path), "--backend", backend, "--time-limit", str(time_limit),
                                      "--quiet", "--out", str(out_dir)], path, f"solve[{backend}]")
                if solved.get("code") == 2:
                    note(kind, "disagreements", f"validate accepted, solve[{backend}] exit 2", path)
        elif kind == "qubo":
            name, data = rng.choice(qubos)
            path = work / f"m{k}{Path(name).suffix}"
            path.write_bytes(mutate_bytes(data, rng))
            check(kind, ["solve", str(path), "--backend", rng.choice(["anneal", "cpsat", "exact"]), "--time-limit",
                         str(time_limit), "--quiet", "--out", str(out_dir)], path, "solve")
        else:
            name, doc = rng.choice(configs)
            data = _encode(mutate_document(doc, rng), ".toml") or mutate_bytes(_encode(doc, ".toml"), rng)
            path = work / f"m{k}.toml"
            path.write_bytes(data)
            check(kind, ["solve", str(REPO / "problems" / "tiny.toml"), "--config", str(path), "--time-limit",
                         str(time_limit), "--quiet", "--out", str(out_dir)], path, "solve --config")
        if (k + 1) % 100 == 0:
            bad = sum(c["tracebacks"] + c["hangs"] for c in counts.values())
            print(f"[{k + 1}/{mutants}] {time.perf_counter() - started:.0f} s, tracebacks+hangs so far: {bad}",
                  file=sys.stderr, flush=True)
    return {"mutants": mutants, "seed": seed, "time_limit": time_limit, "hang_after_s": hang_after,
            "counts": counts, "failures": failures, "seconds": time.perf_counter() - started,
            "work": str(work), "peak_rss_mb_parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_rss_mb_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=2.0)
    parser.add_argument("--kinds", default="problem,qubo,config")
    parser.add_argument("--quick", action="store_true", help="300 mutants")
    args = parser.parse_args()
    mutants = 300 if args.quick else args.mutants
    report = fuzz(mutants, args.seed, args.time_limit, args.kinds.split(","))
    print(f"\n{mutants} mutants in {report['seconds']:.0f} s (time limit {args.time_limit:g} s, a hang is > "
          f"{report['hang_after_s']:.0f} s); peak RSS of a child {report['peak_rss_mb_children']:.0f} MB")
    print(f"{'kind':<10}{'mutants':>9}{'accepted':>10}{'tracebacks':>12}{'hangs':>7}{'disagree':>10}{'odd exit':>10}")
    for kind, c in report["counts"].items():
        print(f"{kind:<10}{c['mutants']:>9}{c['accepted']:>10}{c['tracebacks']:>12}{c['hangs']:>7}"
              f"{c['disagreements']:>10}{c['odd_exit']:>10}")
    for signature, entry in sorted(report["failures"].items(), key=lambda kv: -kv[1]["count"])[:40]:
        print(f"  {entry['count']:>5} x {signature}  (e.g. {entry['example']})")
    out = REPO / "results" / f"fuzz-{args.seed}-{mutants}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out}")
    bad = sum(c["tracebacks"] + c["hangs"] for c in report["counts"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_cli())
