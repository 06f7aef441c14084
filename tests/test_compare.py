"""``qfreight compare`` and ``qfreight report``: every file written, CSV and JSON agree, the HTML is
self-contained and escapes every input name, it renders in a real headless Chromium, and
``qfreight report`` rebuilds identical tables. Tiny instance, cpsat + anneal, 2 seeds."""

from __future__ import annotations

import csv
import html.parser
import json
import math
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from optimizer.cli import main
from optimizer.freight.evaluate import KPI_LABELS
from optimizer.report.results import csv_columns
from optimizer.report.stats import performance_profile, tts99
from tests.conftest import PROBLEMS

CHROMIUM = Path("/usr/bin/chromium")
FAST_CONFIG = """
[backends.cpsat]
workers = 1
[backends.anneal]
num_reads = 16
num_sweeps = 200
"""
SECTIONS = ("run", "summary", "instances", "tts", "profile", "kpis", "timing", "metrics", "network", "runs")
FIGURES = ("fig-1-objective-time", "fig-profile", "fig-1-kpis", "fig-1-gantt", "fig-1-map")
# Names a hostile problem file could carry; each must come out as text.
HOSTILE_PROBLEM = "<script>alert('problem')</script> $x$"
HOSTILE_HUB_ID = "<svg\\onload=alert(1)"  # ids may not hold ' ', '>', '/', '@' or '#' (keys and labels use them)
HOSTILE_HUB_NAME = "<img src=x onerror=alert(1)>"


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "fast.toml"
    path.write_text(FAST_CONFIG)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, config_file) -> Path:
    out = tmp_path_factory.mktemp("compare") / "run"
    code = main(["compare", str(PROBLEMS / "tiny.toml"), "--config", str(config_file), "--backends", "cpsat,anneal",
                 "--seeds", "2", "--time-limit", "2", "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory, config_file) -> Path:
    text = (PROBLEMS / "tiny.toml").read_text()
    text = text.replace('name = "tiny"', f'name = "{HOSTILE_PROBLEM}"', 1)
    text = text.replace('name = "Xi\'an"', f'name = "{HOSTILE_HUB_NAME}"', 1)
    text = text.replace('"XIY"', json.dumps(HOSTILE_HUB_ID))
    base = tmp_path_factory.mktemp("hostile")
    problem = base / "hostile.toml"
    problem.write_text(text)
    out = base / "run"
    code = main(["compare", str(problem), "--config", str(config_file), "--backends", "cpsat", "--seeds", "1",
                 "--time-limit", "2", "--out", str(out)])
    assert code == 0
    assert json.loads((out / "results.json").read_text())["rows"][0]["error"] is None
    return out


def _doc(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


# ------------------------------------------------------------------------------------ the files
def test_compare_writes_every_file(run_dir):
    for name in ("results.json", "results.csv", "report.md", "report.html", *(f"{f}.png" for f in FIGURES)):
        assert (run_dir / name).stat().st_size > 0, name
    md = (run_dir / "report.md").read_text()
    for f in FIGURES:  # report.md links the PNGs written beside it
        assert f"]({f}.png)" in md


def test_rows_carry_the_benchmark_fields(run_dir):
    doc = _doc(run_dir)
    assert doc["status"] == "complete"
    rows = doc["rows"]
    assert [(r["backend"], r["seed"]) for r in rows] == [("cpsat", 0), ("cpsat", 1), ("anneal", 0), ("anneal", 1)]
    ref = doc["instances"]["tiny"]["reference"]
    assert ref["kind"] == "proven optimum"
    for r in rows:
        assert r["error"] is None
        assert r["instance"] == "tiny" and r["model_variables"] == 12
        # Only QUBO backends get a QUBO: CP-SAT solves the constrained model.
        assert r["qubo_variables"] == (None if r["backend"] == "cpsat" else 12)
        assert r["versions"]["qfreight"] and r["versions"]["numpy"]
        assert r["feasible"] is True
        assert r["gap_reference"] == "proven optimum"
        assert r["gap"] == pytest.approx((r["objective"] - ref["value"]) / abs(ref["value"]))
        assert r["time_solve_s"] > 0 and r["time_classical_s"] >= 0 and r["time_quantum_sim_s"] == 0
        assert r["reads"] >= 1
        assert set(r["kpis"]) >= set(KPI_LABELS) and set(r["kpi_change_percent"]) == set(KPI_LABELS)
        assert r["plan"] and all("shipment" in s for s in r["plan"])
    assert rows[0]["versions"]["ortools"] and rows[2]["versions"]["dwave-samplers"]
    assert rows[0]["optimal"] is True and rows[0]["gap"] == pytest.approx(0.0, abs=1e-12)


def test_csv_and_json_agree(run_dir):
    doc = _doc(run_dir)
    with open(run_dir / "results.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == csv_columns(doc)
        cells = list(reader)
    assert len(cells) == len(doc["rows"])

    def same(cell: str, value) -> bool:
        if value is None:
            return cell == ""
        if isinstance(value, bool):
            return cell == ("true" if value else "false")
        if isinstance(value, (int, float)):
            return float(cell) == float(value)
        if isinstance(value, dict):
            return dict(kv.split("=", 1) for kv in cell.split(";")) == {k: v or "" for k, v in value.items()}
        return cell == str(value)

    for cell_row, row in zip(cells, doc["rows"]):
        for key in csv_columns(doc):
            if "." in key:
                prefix, kpi = key.split(".", 1)
                field = {"kpi": "kpis", "baseline": "baseline_kpis", "change_percent": "kpi_change_percent"}[prefix]
                value = (row.get(field) or {}).get(kpi)
            else:
                value = row.get(key)
            assert same(cell_row[key], value), (key, cell_row[key], value)


def test_html_is_self_contained_with_every_section(run_dir):
    page = (run_dir / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    tags = _tags(page)
    assert {t for t, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "section", "dl",
                                    "dt", "dd", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "p",
                                    "figure", "img", "figcaption"}
    images = [dict(a) for t, a in tags if t == "img"]
    assert len(images) == len(FIGURES)
    assert all(img["src"].startswith("data:image/png;base64,") for img in images)
    for text in ("Performance profile", "TTS99", "Dwell at transfer yards".lower(), "best baseline: regret (before)"):
        assert text.lower() in page.lower()


def test_hostile_names_are_escaped(hostile_dir):
    page = (hostile_dir / "report.html").read_text()
    md = (hostile_dir / "report.md").read_text()
    tags = _tags(page)
    assert not {"script", "svg"} & {t for t, _ in tags}
    assert not any(name.startswith("on") for _, attrs in tags for name, _ in attrs)
    assert len([t for t, _ in tags if t == "img"]) == len(FIGURES)  # no injected <img>
    for raw in (HOSTILE_PROBLEM, HOSTILE_HUB_ID, HOSTILE_HUB_NAME, "<script", "<svg", "<img src=x"):
        assert raw not in page and raw not in md
    assert "&lt;script&gt;alert(&#x27;problem&#x27;)&lt;/script&gt; $x$" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;svg\\onload=alert(1)" in page


def test_report_rebuilds_identical_tables(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    before = {name: (copy / name).read_bytes() for name in ("report.md", "results.csv", "report.html")}
    for name in before:
        (copy / name).unlink()
    code, out, _ = run_cli(["report", copy], capsys)
    assert code == 0 and "rebuilt" in out
    for name, content in before.items():
        assert (copy / name).read_bytes() == content, name


def test_report_on_a_folder_without_results_exits_2(tmp_path, capsys):
    code, _, err = run_cli(["report", tmp_path], capsys)
    assert code == 2 and "results.json" in err


# ------------------------------------------------------------------------------ failures, Ctrl-C
def test_backend_that_cannot_run_gets_an_error_row(tmp_path, config_file, capsys, monkeypatch):
    import optimizer.solving.compare as compare
    import optimizer.solving.pipeline as pipeline
    from optimizer.errors import MissingDependency

    real = pipeline.create_solver

    def create_solver(name, options=None, **kw):
        if name == "photonic":
            raise MissingDependency("photonic", "strawberryfields", "pip install strawberryfields")
        return real(name, options, **kw)

    monkeypatch.setattr(pipeline, "create_solver", create_solver)
    monkeypatch.setattr(compare, "_warm_up", lambda backend, config: None)
    code, out, err = run_cli(["compare", PROBLEMS / "tiny.toml", "--config", config_file, "--backends",
                              "cpsat,photonic", "--seeds", "1", "--time-limit", "2", "--out", tmp_path], capsys)
    assert code == 0
    rows = _doc(tmp_path)["rows"]
    assert [r["backend"] for r in rows] == ["cpsat", "photonic"]
    assert rows[0]["error"] is None and "strawberryfields" in rows[1]["error"]
    assert "Could not run: photonic" in out
    assert "strawberryfields" in (tmp_path / "report.html").read_text()


def test_interrupt_keeps_finished_rows_and_exits_130(tmp_path, config_file, capsys, monkeypatch):
    import optimizer.solving.compare as compare

    real, calls = compare.run_one, []

    def run_one(spec):
        calls.append(spec)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(compare, "run_one", run_one)
    code, _, err = run_cli(["compare", PROBLEMS / "tiny.toml", "--config", config_file, "--backends",
                            "cpsat,anneal", "--seeds", "2", "--time-limit", "2", "--out", tmp_path], capsys)
    assert code == 130 and "2 of 4 runs" in err
    doc = _doc(tmp_path)
    assert doc["status"] == "interrupted" and len(doc["rows"]) == 2
    with open(tmp_path / "results.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    assert (tmp_path / "report.html").exists()


def test_unknown_backend_exits_2(tmp_path, capsys):
    code, _, err = run_cli(["compare", PROBLEMS / "tiny.toml", "--backends", "cpsat,nosuch", "--out", tmp_path],
                           capsys)
    assert code == 2 and "nosuch" in err


def test_bare_qubo_files_compare_energies(tmp_path, capsys):
    from optimizer.qubo import Qubo
    from optimizer.qubo.formats import write_qubo

    rng = np.random.default_rng(7)
    path = write_qubo(Qubo.from_dense(np.round(rng.normal(size=(8, 8)) * 4)), tmp_path / "small.qubo")
    out = tmp_path / "run"
    code, _, _ = run_cli(["compare", path, "--backends", "cpsat,exact", "--seeds", "1", "--time-limit", "2",
                          "--out", out], capsys)
    assert code == 0
    doc = _doc(out)
    rows = doc["rows"]
    assert [r["backend"] for r in rows] == ["cpsat", "exact"]
    assert all(r["kpis"] is None and r["objective_unit"] == "QUBO energy" for r in rows)
    assert rows[0]["gap_reference"] == "proven optimum"
    assert rows[1]["objective"] == pytest.approx(rows[0]["objective"]) and rows[1]["reached_best_known"]


# ------------------------------------------------------------------------------------ statistics
def test_tts99_formula():
    assert tts99(0.0, 1.0) == math.inf
    assert tts99(1.0, 2.0) == 2.0
    assert tts99(0.5, 1.0) == pytest.approx(math.log(0.01) / math.log(0.5))


def test_performance_profile_ratios():
    def row(inst, backend, t, hit):
        return {"instance": inst, "backend": backend, "error": None, "feasible": True, "objective": 1.0,
                "time_solve_s": t, "reached_best_known": hit, "gap": 0.0, "hybrid": False}

    doc = {"backends": ["a", "b"], "instances": {"i1": {}, "i2": {}},
           "rows": [row("i1", "a", 1.0, True), row("i1", "b", 4.0, True),
                    row("i2", "a", 3.0, True), row("i2", "b", 1.0, False)]}
    assert performance_profile(doc) == {"a": [1.0, 1.0], "b": [4.0, math.inf]}


# ------------------------------------------------------------------------------ headless Chromium
def _tags(page: str) -> list[tuple[str, list[tuple[str, str]]]]:
    found: list[tuple[str, list[tuple[str, str]]]] = []

    class Collector(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collector().feed(page)
    return found


def _png_pixels(path: Path) -> tuple[int, int, np.ndarray]:
    """(width, height, RGB array) of a PNG: with Pillow when installed, else by the standard
    library (8-bit RGB/RGBA, not interlaced: what Chromium writes)."""
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        with Image.open(path) as im:
            return im.width, im.height, np.asarray(im.convert("RGB"))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG layout {header}"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, bpp)[:, :, :3]
    return width, height, pixels


def test_html_report_renders_in_headless_chromium(run_dir, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the HTML report must be checked in a real browser. Install it with "
                    "`apt-get update && apt-get install -y chromium` (.ci/run does this in CI).")
    shot = tmp_path / "report.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
           (run_dir / "report.html").resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), f"chromium failed:\n{proc.stderr[-2000:]}"
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1200, 2000)
    assert pixels.reshape(-1, 3).std(axis=0).max() > 10, "the screenshot is blank"
    # The page itself is black, white and grey; saturated pixels come only from the plots, so
    # their presence shows the embedded PNGs were decoded and drawn.
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
    assert int((spread > 80).sum()) > 500, "no plot visible in the rendered page"
