"""Config files and flags as contracts: every bad value is a ConfigError naming the field, never
a traceback (issue: limits and inputs as contracts, config items)."""

from __future__ import annotations

import math
import os

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import check_backend_options, create_solver
from optimizer.errors import ConfigError
from optimizer.solving.config import BOUNDS, Config, load_config, parse_config


def issues_of(data) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="c.toml")
    return str(err.value)


@pytest.mark.parametrize("data, field", [
    ({"backends": {"qaoa": {"reps": "2"}}}, "backends.qaoa.reps: expected int"),
    ({"backends": {"qaoa": {"reps": 2.5}}}, "backends.qaoa.reps: expected int"),
    ({"backends": {"anneal": {"num_reads": True}}}, "backends.anneal.num_reads: expected int"),
    ({"backends": {"photonic": {"mean_photons": float("nan")}}}, "backends.photonic.mean_photons: must be a finite"),
    ({"model": {"penalty": float("nan")}}, "model.penalty: must be a finite number"),
    ({"model": {"penalty": -1e308}}, "model.penalty: must be between"),
    ({"solver": {"seed": -1}}, "solver.seed: must be between 0"),
    ({"solver": {"seed": 2**40}}, "solver.seed: must be between 0"),
    ({"solver": {"time_limit": float("inf")}}, "solver.time_limit: must be a finite number"),
    ({"solver": {"time_limit": 0}}, "solver.time_limit: must be between"),
    ({"hybrid": {"rounds": 0}}, "hybrid.rounds: must be between 1"),
    ({"refine": {"workers": 10**9}}, "refine.workers: must be between 1"),
])
def test_bad_values_name_their_field(data, field):
    assert field in issues_of(data)


def test_backend_option_types_are_checked_when_building_too():
    with pytest.raises(ConfigError, match=r"backends\.qaoa\.reps: expected int"):
        create_solver("qaoa", {"reps": "2"})
    assert check_backend_options("qaoa", {"reps": 3, "optimizer": "COBYLA"}) == []


def test_flags_are_checked_like_the_file():
    with pytest.raises(ConfigError, match=r"solver\.seed: must be between 0"):
        Config().override(seed=-1)
    with pytest.raises(ConfigError, match=r"solver\.time_limit: must be a finite number"):
        Config().override(time_limit=math.nan)
    assert Config().override(seed=3, time_limit=2.0).solver.seed == 3


def test_non_utf8_and_special_config_files_are_refused(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[solver]\nbackend = \"caf\xe9\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin)
    with pytest.raises(ConfigError, match="is a character device"):
        load_config("/dev/zero")
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        load_config(fifo)  # would block forever if opened as a plain file


def test_cli_reports_bad_seed_and_config_with_exit_2(tmp_path, capsys):
    from optimizer.cli import main
    from tests.conftest import PROBLEMS

    code = main(["solve", str(PROBLEMS / "tiny.toml"), "--backend", "anneal", "--seed", "-1",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "solver.seed" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_unreachable_dask_scheduler_fails_fast_and_clearly():
    import time

    from optimizer.solving.executor import DaskExecutor

    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"executor\.address: cannot reach a Dask scheduler within 2 s"):
        DaskExecutor(address="tcp://127.0.0.1:9", connect_timeout=2.0)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ConfigError, match=r"executor\.address: expected a scheduler address"):
        DaskExecutor(address="not-an-address")


# ---------------------------------------------------------------------------- fuzz
_SECTION_KEYS = {section: [key for (s, key) in BOUNDS if s == section] for section, _ in BOUNDS}
_VALUES = st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=8), st.booleans(), st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
_KEYS = st.one_of(st.sampled_from(sorted({k for ks in _SECTION_KEYS.values() for k in ks} |
                                         {"backend", "kind", "address", "selection", "inequality", "reps",
                                          "num_reads", "max_variables", "enabled"})), st.text(max_size=6))
_SECTIONS = st.sampled_from(["solver", "model", "hybrid", "refine", "executor", "backends", "nonsense"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_SECTIONS, st.dictionaries(_KEYS, _VALUES, max_size=4), max_size=4))
def test_mutated_configs_give_a_config_or_a_config_error(data):
    """Any parsed TOML document: parse_config returns a Config or raises ConfigError, nothing else."""
    try:
        config = parse_config(data, source="fuzz.toml")
    except ConfigError as exc:
        assert "fuzz.toml" in str(exc)
        return
    assert isinstance(config, Config)
    assert math.isfinite(config.solver.time_limit) and 0 <= config.solver.seed < 2**32


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables=st.dictionaries(st.sampled_from(["qaoa", "anneal", "photonic", "cpsat", "exact"]),
                       st.dictionaries(st.sampled_from(["reps", "num_reads", "samples", "workers", "max_variables",
                                                        "method", "optimizer", "modes", "shots", "maxiter"]),
                                       _VALUES, max_size=3), max_size=2))
def test_mutated_backend_tables_are_checked_before_any_backend_is_built(tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    try:
        path.write_text(tomli_w.dumps({"backends": tables}))
    except (TypeError, ValueError):
        return  # not representable in TOML (e.g. NaN keys): no file a user could write
    try:
        config = load_config(path)
    except ConfigError:
        return
    for name in config.backends:
        try:
            create_solver(name, config.backend_options(name))
        except ConfigError:
            pass  # a value of the right type the backend itself refuses (e.g. reps = 0)
