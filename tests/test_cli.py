"""The command line: solve, validate, schema, backends, generate; every bad input exits 2 with a
message naming the file and the field, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tomllib

from optimizer.cli import main
from optimizer.freight.problem import load_problem, problem_schema
from tests.conftest import PROBLEMS

TINY = (PROBLEMS / "tiny.toml").read_text()


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def edited(tmp_path, old: str, new: str, name="bad.toml"):
    assert old in TINY, old
    path = tmp_path / name
    path.write_text(TINY.replace(old, new, 1))
    return path


BAD_CASES = [
    ('destination = "CGO"', 'destination = "NOWHERE"', "shipments[0].destination: unknown hub id"),
    ("due = 2026-03-03T06:00:00", "due = 2026-03-01T06:00:00", "shipments[0].due: must be after release"),
    ("\ncapacity = 1", "\ncapacity = -1", "corridors[0].capacity: must be >= 0"),
    ("wagons = 25", 'wagons = "thirty"', "shipments[0].wagons: expected an integer"),
    ('id = "S2"', 'id = "S1"', "shipments[1].id: duplicate id"),
    ('kind = "transfer"', 'kind = "depot"', "hubs[1].kind: expected one of inland, transfer, port"),
    ("km = 511", "km = 0", "corridors[1].km: must be > 0"),
    ("speed_kmh = 80\ncapacity = 1", "speed_kmh = 80\ncapacity = 0",
     "shipments[0].destination: unreachable from CTU"),
    ("slots = 2", "slots = 2\ncolour = 3", "horizon.colour: unknown field"),
    ("[[shipments]]", "[[shipmens]]", "shipmens: unknown section"),
    ('id = "S1"', 'id = "S 1"', "shipments[0].id: ids may not contain spaces"),
]


@pytest.mark.parametrize("old,new,expected", BAD_CASES, ids=[c[2].split(":")[0] for c in BAD_CASES])
def test_bad_problem_files_exit_2_naming_the_field(tmp_path, capsys, old, new, expected):
    path = edited(tmp_path, old, new)
    for command in ("validate", "solve"):
        code, out, err = run([command, path, "--out", tmp_path / "out"] if command == "solve" else [command, path],
                             capsys)
        assert code == 2
        assert str(path) in err and expected in err
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_validate_reports_every_issue_not_just_the_first(tmp_path, capsys):
    path = tmp_path / "many.toml"
    path.write_text(TINY.replace('destination = "CGO"', 'destination = "NOWHERE"', 1)
                    .replace("wagons = 25", "wagons = -3", 1).replace("\ncapacity = 1", "\ncapacity = -1", 1))
    code, _, err = run(["validate", path], capsys)
    assert code == 2
    assert "shipments[0].destination" in err and "shipments[0].wagons" in err and "corridors[0].capacity" in err


@pytest.mark.parametrize("content,expected", [
    ("", "the file is empty"),
    ("[horizon\nslots = 3", "malformed TOML"),
    ("slots = 3", "unknown section"),
])
def test_empty_and_malformed_toml(tmp_path, capsys, content, expected):
    path = tmp_path / "x.toml"
    path.write_text(content)
    code, _, err = run(["validate", path], capsys)
    assert code == 2 and expected in err and str(path) in err


def test_malformed_json_names_line(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text('{"problem": {"name": "x"},\n "horizon": }')
    code, _, err = run(["validate", path], capsys)
    assert code == 2 and "line 2" in err and "malformed JSON" in err


def test_missing_file_and_bad_config(tmp_path, capsys):
    code, _, err = run(["validate", tmp_path / "nope.toml"], capsys)
    assert code == 2 and "no such file" in err
    cfg = tmp_path / "c.toml"
    cfg.write_text('[solver]\nbackend = "cpsat"\nbakend = 1\n[backends.anneal]\nnum_reeds = 3\n')
    code, _, err = run(["solve", PROBLEMS / "tiny.toml", "--config", cfg, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "solver.bakend: unknown key" in err and "backends.anneal.num_reeds: unknown option" in err
    code, _, err = run(["solve", PROBLEMS / "tiny.toml", "--backend", "dwave", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--backend" in err


def test_json_problem_equals_toml_problem(tmp_path):
    data = tomllib.loads(TINY)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data, default=lambda v: v.isoformat()))
    a, b = load_problem(PROBLEMS / "tiny.toml"), load_problem(path)
    assert a.shipments == b.shipments and a.hubs == b.hubs and a.corridors == b.corridors


def test_schema_is_json_and_covers_sections(capsys):
    code, out, _ = run(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0 and schema == problem_schema()
    assert set(schema["properties"]) >= {"horizon", "hubs", "corridors", "shipments", "berths", "weather", "costs"}
    assert schema["properties"]["hubs"]["items"]["properties"]["kind"]["enum"] == ["inland", "transfer", "port"]


def test_solve_tiny_with_cpsat_writes_results(tmp_path, capsys):
    code, out, _ = run(["solve", PROBLEMS / "tiny.toml", "--backend", "cpsat", "--out", tmp_path], capsys)
    assert code == 0
    assert "proven optimal" in out and "Dwell at transfer yards" in out and "greedy" in out
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["feasible"] and result["optimal"] and result["status"] == "optimal"
    # CP-SAT solves the constrained model: no QUBO is built for it.
    assert result["qubo_energy"] is None and result["sizes"]["qubo_variables"] is None
    assert "no QUBO built" in out
    assert {row["shipment"] for row in result["plan"]} == {"S1", "S2", "S3"}


def test_solve_same_seed_same_result(tmp_path, capsys):
    # Work mode: fixed reads, so the same seed gives the same plan whatever the load.
    cfg = tmp_path / "work.toml"
    cfg.write_text('[solver]\nbudget = "work"\n[backends.anneal]\nnum_reads = 32\n')
    for name in ("a", "b"):
        assert run(["solve", PROBLEMS / "tiny.toml", "--backend", "anneal", "--seed", 7, "--config", cfg,
                    "--out", tmp_path / name, "--quiet"], capsys)[0] == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a["plan"] == b["plan"] and a["qubo_energy"] == b["qubo_energy"]


def test_generate_then_validate_and_solve(tmp_path, capsys):
    path = tmp_path / "gen.toml"
    assert run(["generate", "--hubs", 6, "--shipments", 12, "--seed", 4, "--out", path], capsys)[0] == 0
    assert run(["validate", path], capsys)[0] == 0
    code, out, _ = run(["solve", path, "--backend", "cpsat", "--time-limit", 5, "--out", tmp_path / "o"], capsys)
    assert code == 0 and "(plan checked)" in out
    # Same seed, same file.
    again = tmp_path / "again.toml"
    run(["generate", "--hubs", 6, "--shipments", 12, "--seed", 4, "--out", again], capsys)
    assert again.read_text() == path.read_text()


def test_backends_lists_every_backend(capsys):
    code, out, _ = run(["backends"], capsys)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    for name in ("exact", "anneal", "cpsat", "qaoa", "photonic"):
        # Every declared dependency is installed, so every backend must load and build.
        assert rows[name].split()[1] == "yes", rows[name]
        assert "error" not in rows[name], rows[name]


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    import importlib.metadata

    assert out.strip() == f"qfreight {importlib.metadata.version('qfreight')}"


def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "optimizer.cli", "validate", str(PROBLEMS / "china-core.toml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "30 shipments" in proc.stdout


def test_problem_larger_than_device_goes_through_hybrid(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[backends.exact]\nmax_variables = 14\n[hybrid]\nrounds = 6\n[refine]\nenabled = false\n")
    code, out, _ = run(["solve", PROBLEMS / "china-core.toml", "--backend", "exact", "--config", cfg,
                        "--time-limit", 8, "--out", tmp_path / "o"], capsys)
    assert code == 0
    assert "larger than exact takes whole: solved by hybrid decomposition" in out
    result = json.loads((tmp_path / "o" / "results.json").read_text())
    assert result["hybrid"] and result["feasible"]
    assert result["objective_cny"] <= result["greedy_objective_cny"] + 1e-6


def test_bare_qubo_files_solve_and_export(tmp_path, capsys, shared_data):
    # Beasley bqp50 instance 1 (OR-Library; published optimum 2098, maximisation).
    # --target stops the annealer's budget once the published value is reached.
    code, out, _ = run(["solve", f"{shared_data / 'bqp' / 'bqp50.txt'}#1", "--backend", "anneal", "--target", 2098,
                        "--time-limit", 20, "--out", tmp_path / "b"], capsys)
    assert code == 0 and "best energy -2098" in out and "objective 2098 in the file's max convention" in out
    report = json.loads((tmp_path / "b" / "results.json").read_text())
    assert report["best_energy"] == -2098 and "kpis" not in report
    code, out, _ = run(["export", PROBLEMS / "tiny.toml", "--to", "qubo", "-o", tmp_path / "tiny.qubo"], capsys)
    assert code == 0
    code, out, _ = run(["solve", tmp_path / "tiny.qubo", "--backend", "exact", "--out", tmp_path / "t"], capsys)
    tiny = json.loads((tmp_path / "t" / "results.json").read_text())
    cp = json.loads((tmp_path / "t" / "results.json").read_text())
    assert code == 0 and tiny["num_variables"] <= 20 and cp["best_energy"] > 0
    code, out, _ = run(["export", PROBLEMS / "tiny.toml", "--to", "lp", "-o", tmp_path / "tiny.lp"], capsys)
    assert code == 0 and "constrained model" in out and (tmp_path / "tiny.lp").read_text().strip()
    bad = tmp_path / "bad.qubo"
    bad.write_text("p qubo 0 3 1 1\n0 0 x\n")
    code, _, err = run(["solve", bad, "--backend", "exact", "--out", tmp_path / "x"], capsys)
    assert code == 2 and str(bad) in err and "line " in err


def test_config_sections_for_hybrid_and_executor_are_checked(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[hybrid]\nselection = "best"\n[executor]\nkind = "cloud"\n[refine]\nenabeld = true\n')
    code, _, err = run(["solve", PROBLEMS / "tiny.toml", "--config", cfg, "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert "hybrid.selection" in err and "executor.kind" in err and "refine.enabeld: unknown key" in err


def test_infeasible_result_prints_violations_and_no_kpis(tmp_path, capsys):
    # A hand-set penalty far below the rule's makes "no plan at all" the QUBO minimum.
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\npenalty = 1.0\n[backends.exact]\nnum_reads = 1\n")
    code, out, err = run(["solve", PROBLEMS / "tiny.toml", "--backend", "exact", "--config", cfg,
                          "--out", tmp_path / "o"], capsys)
    assert code == 0 and "INFEASIBLE" in out and "expected exactly one plan, got 0" in out
    assert "replaces the penalty rule" in err
    result = json.loads((tmp_path / "o" / "results.json").read_text())
    assert result["feasible"] is False and result["kpis"] is None and result["violations"]
