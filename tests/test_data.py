"""The data folder and ``qfreight data fetch``: lookup order, skips with a reason, and downloads
checked against SHA-256 sums, atomically, from a real HTTP server on the loopback interface."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from optimizer import data
from optimizer.data import DataFile, DataSet, FetchError, fetch, fetch_file, find_data_folder
from tests.conftest import REPO, require_data


# ------------------------------------------------------------------ the data folder
def test_lookup_order_explicit_then_checkout_then_cache(tmp_path):
    explicit, cache, checkout = tmp_path / "mine", tmp_path / "cache", tmp_path / "repo"
    explicit.mkdir()
    (checkout.parent / "shared" / "data").mkdir(parents=True)
    (cache / "qfreight" / "data" / "bqp").mkdir(parents=True)
    env = {"QFREIGHT_DATA": str(explicit), "XDG_CACHE_HOME": str(cache)}
    assert find_data_folder(environ=env, checkout=checkout).path == explicit
    env.pop("QFREIGHT_DATA")
    assert find_data_folder(environ=env, checkout=checkout).path == checkout.parent / "shared" / "data"
    assert find_data_folder(environ=env, checkout=None).path == cache / "qfreight" / "data"
    # An explicit setting that names no folder is used as given: no silent fallback, and the reason says so.
    missing = find_data_folder(environ={"QFREIGHT_DATA": "/nonexistent", "XDG_CACHE_HOME": str(cache)},
                               checkout=checkout)
    assert missing.path is None and "QFREIGHT_DATA=/nonexistent is not a folder" in missing.reason
    nothing = find_data_folder(environ={"HOME": str(tmp_path / "home")}, checkout=None)
    assert nothing.path is None and "qfreight data fetch" in nothing.reason


def test_fetch_destination_defaults_to_qfreight_data_then_the_cache(tmp_path):
    assert data.default_destination({"QFREIGHT_DATA": str(tmp_path)}) == tmp_path
    assert data.default_destination({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "qfreight" / "data"


def test_tests_needing_data_skip_with_the_reason_on_a_clone_with_nothing_beside_it(tmp_path):
    """Run a data test in a subprocess that sees no data folder: it must skip, not fail or error."""
    env = dict(os.environ, QFREIGHT_DATA=str(tmp_path / "nonexistent"), HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_published.py::test_anneal_reaches_every_published_bqp50_optimum",
                           "tests/test_qubo_files.py::test_bqp_file_reads_as_negated_symmetric_maximisation"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped" in done.stdout and "public test data not found" in done.stdout
    assert "is not a folder" in done.stdout


def test_manifest_is_honest_about_its_sums(shared_data):
    sets = data.data_sets()
    assert {"bqp50", "bqp100", "bqp250", "bqp500", "gset", "railway", "qplib"} <= set(sets)
    for dataset in sets.values():
        for f in dataset.files:
            assert f.url.startswith(("http://", "https://")) and f.checked
            assert f.sha256 == "" or len(f.sha256) == 64
    recorded = {f.path: f.sha256 for s in sets.values() for f in s.files if f.sha256}
    # The one recorded sum is the shared copy's: check it against that copy when it is here.
    for path, digest in recorded.items():
        (local,) = require_data(shared_data, path)
        assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
    # The published values in the manifest agree with the shared optima file where both exist.
    (optima,) = require_data(shared_data, "bqp/bqp50_optima.json")
    shared = {k: v["value"] for k, v in json.loads(optima.read_text()).items()}
    assert data.published_values("bqp50") == shared


# ------------------------------------------------------------------ fetching from a loopback server
@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def _served(root: Path, name: str, content: bytes) -> str:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name.startswith(".fetch-"))


def test_fetch_installs_a_file_whose_sum_matches(server, tmp_path):
    root, base = server
    digest = _served(root, "small.txt", b"1\n2 1\n1 2 3\n")
    dest = tmp_path / "dest"
    entry = DataFile(url=f"{base}/small.txt", path="bqp/small.txt", sha256=digest, checked="test")
    result = fetch_file(entry, dest, timeout=5, log=lambda _: None)
    assert result.verified and result.status == "installed" and (dest / "bqp" / "small.txt").read_bytes() == \
        b"1\n2 1\n1 2 3\n"
    log = json.loads((dest / "FETCHED.json").read_text())
    assert log["bqp/small.txt"]["verified"] is True and log["bqp/small.txt"]["sha256"] == digest
    assert fetch_file(entry, dest, timeout=5, log=lambda _: None).status == "present"  # not downloaded again
    assert _leftovers(dest) == []


def test_fetch_refuses_a_wrong_sum_and_leaves_nothing_behind(server, tmp_path):
    root, base = server
    _served(root, "small.txt", b"tampered")
    dest = tmp_path / "dest"
    entry = DataFile(url=f"{base}/small.txt", path="bqp/small.txt", sha256="0" * 64, checked="test")
    with pytest.raises(FetchError, match="does not match the recorded"):
        fetch_file(entry, dest, timeout=5, log=lambda _: None)
    assert not (dest / "bqp" / "small.txt").exists() and _leftovers(dest) == []


def test_fetch_reports_http_404_and_leaves_nothing_behind(server, tmp_path):
    _, base = server
    dest = tmp_path / "dest"
    entry = DataFile(url=f"{base}/absent.txt", path="bqp/absent.txt", sha256="0" * 64, checked="test")
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_file(entry, dest, timeout=5, log=lambda _: None)
    assert not (dest / "bqp" / "absent.txt").exists() and _leftovers(dest) == []


def test_fetch_from_an_unreachable_port_fails_fast(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = DataFile(url=f"http://127.0.0.1:{port}/x.txt", path="x.txt", sha256="0" * 64, checked="test")
    start = time.perf_counter()
    with pytest.raises(FetchError, match="cannot connect"):
        fetch_file(entry, tmp_path, timeout=0.5, log=lambda _: None)
    assert time.perf_counter() - start < 5 and _leftovers(tmp_path) == []


def test_unverified_files_are_refused_unless_accepted(server, tmp_path):
    root, base = server
    digest = _served(root, "G1", b"3 1\n1 2 1\n")
    entry = DataFile(url=f"{base}/G1", path="gset/G1", sha256="", checked="no copy")
    with pytest.raises(FetchError, match=f"has sha256 {digest}.*--accept-unverified"):
        fetch_file(entry, tmp_path, timeout=5, log=lambda _: None)
    assert not (tmp_path / "gset" / "G1").exists() and _leftovers(tmp_path) == []
    printed = []
    result = fetch_file(entry, tmp_path, timeout=5, accept_unverified=True, log=printed.append)
    assert result.verified is False and (tmp_path / "gset" / "G1").exists()
    assert "UNVERIFIED" in printed[0] and digest in printed[0]
    assert json.loads((tmp_path / "FETCHED.json").read_text())["gset/G1"]["verified"] is False


def test_railway_pickle_is_converted_without_running_code(server, tmp_path):
    root, base = server
    published = {"qubo": {(0, 0): -4.0, (0, 1): 4.0, (1, 0): 4.0, (1, 1): -3.5}, "noqubits": 2}
    _served(root, "r.json", pickle.dumps(published))
    dataset = DataSet(name="railway", title="t", publisher="p", citation="c", format="triples", sense="min",
                      convert="railway-pickle",
                      files=(DataFile(url=f"{base}/r.json", path="railway_qubo/original/r.pkl",
                                      converted="railway_qubo/r.qubo.txt", sha256="", checked="none"),))
    fetch(["railway"], dest=tmp_path, sets={"railway": dataset}, accept_unverified=True, log=lambda _: None)
    from optimizer.qubo.formats import read_qubo

    qubo = read_qubo(tmp_path / "railway_qubo" / "r.qubo.txt")
    assert qubo.energy([1, 1]) == -4.0 + 8.0 - 3.5  # both orders of the pair, added
    # A pickle that would call a function (here os.system) is refused, and nothing is installed.
    hostile = b"cos\nsystem\n(S'echo owned'\ntR."
    _served(root, "evil.json", hostile)
    evil = DataSet(name="railway", title="t", publisher="p", citation="c", format="triples", sense="min",
                   convert="railway-pickle",
                   files=(DataFile(url=f"{base}/evil.json", path="railway_qubo/original/evil.pkl",
                                   converted="railway_qubo/evil.qubo.txt", sha256="", checked="none"),))
    with pytest.raises(FetchError, match="refused to load os.system"):
        fetch(["railway"], dest=tmp_path, sets={"railway": evil}, accept_unverified=True, log=lambda _: None)
    assert not (tmp_path / "railway_qubo" / "evil.qubo.txt").exists()
    assert not (tmp_path / "railway_qubo" / "original" / "evil.pkl").exists()


def test_cli_fetch_from_a_mirror_verifies_the_recorded_bqp50_sum(server, tmp_path, shared_data, capsys):
    """The real manifest entry and its recorded sum, served from loopback as a mirror."""
    from optimizer.cli import main

    root, base = server
    (local,) = require_data(shared_data, "bqp/bqp50.txt")
    _served(root, "bqp/bqp50.txt", local.read_bytes())
    dest = tmp_path / "dest"
    assert main(["data", "fetch", "bqp50", "--dest", str(dest), "--mirror", base, "--timeout", "5"]) == 0
    assert "1 verified" in capsys.readouterr().out
    assert (dest / "bqp" / "bqp50.txt").read_bytes() == local.read_bytes()
    optima = json.loads((dest / "bqp" / "bqp50_optima.json").read_text())
    assert optima["bqp50.1"]["value"] == 2098 and optima["bqp50.1"]["sense"] == "max"
    # A set without recorded sums fails with exit status 1 and installs nothing.
    _served(root, "bqp/bqp100.txt", b"1\n2 1\n1 2 3\n")
    assert main(["data", "fetch", "bqp100", "--dest", str(dest), "--mirror", base, "--timeout", "5"]) == 1
    assert "--accept-unverified" in capsys.readouterr().err and not (dest / "bqp" / "bqp100.txt").exists()
    assert main(["data", "fetch", "no-such-set", "--dest", str(dest)]) == 2
