"""QUBO and model files in and out: sign conventions and the sense, every reader's round trip and
malformed files, detection that never guesses, and readers as contracts (special files, size
caps, header counts, non-finite coefficients).

Every third-party file is reached through the ``shared_data`` fixture (skipped without it); every
other instance is written by the test itself. Public files used (see shared/data/README.md):
- bqp/bqp50.txt: Beasley's OR-Library BQP set bqp50 (J.E. Beasley, "OR-Library: distributing test
  problems by electronic mail", J. Oper. Res. Soc. 41 (1990)); a maximisation problem.
- railway_qubo/*.qubo.txt: the QUBOs of iitis/quantum-stochastic-optimization-railways (QUBOs/gates),
  Domino, Kundu, Salehi, Krawiec, Quantum Inf. Process. 21:337 (2022); a minimisation problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import dimod
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.errors import InputError
from optimizer.qubo.model import BinaryModel
from optimizer.qubo import Qubo
from optimizer.qubo.formats import FORMATS, canonical_format, count_instances, describe_result, detect_format, \
    is_qubo_file, native_objective, read_qubo, read_qubos, split_instance, write_model, write_qubo
from tests.conftest import one_hot_qubo, random_qubo, require_data


def raw_bqp_instances(path: Path) -> list[tuple[int, list[tuple[int, int, float]]]]:
    """An independent, naive reading of an OR-Library file: [(n, [(i, j, q), ...]), ...], 1-based."""
    numbers = path.read_text().split()
    count, pos, out = int(numbers[0]), 1, []
    for _ in range(count):
        n, nnz = int(numbers[pos]), int(numbers[pos + 1])
        pos += 2
        entries = [(int(numbers[pos + 3 * e]), int(numbers[pos + 3 * e + 1]), float(numbers[pos + 3 * e + 2]))
                   for e in range(nnz)]
        pos += 3 * nnz
        out.append((n, entries))
    return out


# ------------------------------------------------------------------ the public files
def test_bqp_file_reads_as_negated_symmetric_maximisation(shared_data):
    (path,) = require_data(shared_data, "bqp/bqp50.txt")
    assert detect_format(path) == "bqp"
    assert count_instances(path) == 10
    qubos = read_qubos(path)
    raw = raw_bqp_instances(path)
    rng = np.random.default_rng(0)
    for k, (qubo, (n, entries)) in enumerate(zip(qubos, raw), start=1):
        assert qubo.num_variables == n == 50
        assert qubo.metadata["instance"] == k and qubo.metadata["name"] == f"bqp50.{k}"
        # Beasley's objective, literally: sum_i sum_j q_ij x_i x_j with q symmetric.
        q = np.zeros((n, n))
        for i, j, w in entries:
            q[i - 1, j - 1] = q[j - 1, i - 1] = w
        X = rng.integers(0, 2, size=(200, n))
        maximised = np.einsum("ki,ij,kj->k", X, q, X)
        np.testing.assert_allclose(qubo.energies(X), -maximised)
        np.testing.assert_allclose([native_objective("bqp", e) for e in qubo.energies(X)], maximised)
    third = read_qubo(f"{path}#3")
    np.testing.assert_array_equal(third.to_dense(), qubos[2].to_dense())


def test_railway_triples_reproduce_published_ground_energy(shared_data):
    require_data(shared_data, "railway_qubo")
    files = sorted((shared_data / "railway_qubo").glob("*.qubo.txt"))
    assert len(files) == 14
    for path in files:
        assert detect_format(path) == "triples"
        qubo = read_qubo(path)
        published = json.loads(path.with_name(path.name.replace(".qubo.txt", ".json")).read_text())
        assert qubo.num_variables == published["n"]
        ground = np.array(published["ground_solutions"])
        np.testing.assert_allclose(qubo.energies(ground), published["ground_energy"])
        # The file's own energy, sum w_ij x_i x_j, computed independently from the JSON triples.
        x = ground[0]
        direct = sum(w * x[int(i)] * x[int(j)] for i, j, w in published["qubo"])
        assert qubo.energy(x) == pytest.approx(direct)


# ------------------------------------------------------------------ round trips
TEXT_FORMATS = ["bqp", "qbsolv", "triples", "npz", "dimod", "lp", "mps", "qplib"]
#: Formats whose readers give back the labels exactly (the others keep names made valid for them).
EXACT_LABELS = ("qbsolv", "triples", "dimod", "npz")


@st.composite
def qubos(draw):
    n = draw(st.integers(1, 10))
    integer = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n)) * draw(st.sampled_from([1.0, 1e-3, 1e4]))
    if integer:
        M = np.round(M)
    M[rng.random((n, n)) > draw(st.floats(0.0, 1.0))] = 0.0
    labelled = draw(st.booleans())
    labels = [f"S{i:03d}/r{i % 3}/t{i}" for i in range(n)] if labelled else []
    return Qubo.from_dense(M, offset=float(draw(st.sampled_from([0.0, 2.5, -7.0]))), labels=labels)


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qubo=qubos())
def test_round_trip_keeps_energies(tmp_path, fmt, qubo):
    path = write_qubo(qubo, tmp_path / f"q.{fmt}", fmt)
    assert detect_format(path) == fmt
    back = read_qubo(path)
    assert back.num_variables == qubo.num_variables
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, size=(64, qubo.num_variables))
    if fmt in ("lp", "mps", "qplib"):
        # These keep names (made valid for the format), not necessarily the order.
        columns = [back.index(label.replace("/", "_")) for label in qubo.labels]
        X_back = np.empty_like(X)
        X_back[:, columns] = X
    else:
        X_back = X
    # bqp has no constant term: the offset is dropped, nothing else changes.
    lost = 0.0 if FORMATS[fmt].keeps_offset else qubo.offset
    scale = max(1.0, float(np.abs(qubo.energies(X)).max()))
    np.testing.assert_allclose(back.energies(X_back), qubo.energies(X) - lost, rtol=1e-12, atol=1e-9 * scale)
    if fmt in EXACT_LABELS:
        assert back.labels == qubo.labels


def test_round_trip_of_public_bqp_instance_is_byte_stable(shared_data, tmp_path):
    (path,) = require_data(shared_data, "bqp/bqp50.txt")
    qubo = read_qubo(f"{path}#7")
    first = write_qubo(qubo, tmp_path / "a.bqp")
    again = write_qubo(read_qubo(first), tmp_path / "b.bqp")
    assert first.read_text() == again.read_text()
    # Integer data stays integer: an OR-Library reader gets the same numbers it would from Beasley.
    assert "." not in first.read_text()


def test_qbsolv_layout_header_then_diagonals_then_couplers(tmp_path):
    qubo = Qubo.from_terms(4, linear=[1, 0, -2, 0], rows=[0, 1], cols=[3, 2], weights=[5, -1.5])
    text = write_qubo(qubo, tmp_path / "q.qubo").read_text().splitlines()
    data = [line for line in text if not line.startswith("c")]
    assert data == ["p qubo 0 4 2 2", "0 0 1", "2 2 -2", "0 3 5", "1 2 -1.5"]


def test_qbsolv_file_written_by_hand_is_read(tmp_path):
    path = tmp_path / "hand.qubo"
    path.write_text("c a comment\nc\np qubo 0 3 2 1\n0 0 -1\n2 2 4.5\n0 2 -3\n")
    qubo = read_qubo(path)
    assert qubo.to_dense().tolist() == [[-1, 0, -3], [0, 0, 0], [0, 0, 4.5]]
    assert qubo.offset == 0.0 and qubo.labels == ("x0", "x1", "x2")


def test_dimod_spin_and_json_are_read_as_binary(tmp_path):
    bqm = dimod.BQM({"a": 1.0, "b": -0.5}, {("a", "b"): 2.0}, 0.25, dimod.SPIN)
    path = tmp_path / "spin.bqm"
    with bqm.to_file() as f:
        path.write_bytes(f.read())
    qubo = read_qubo(path)
    json_path = tmp_path / "spin.json"
    json_path.write_text(json.dumps(bqm.to_serializable()))
    from_json = read_qubo(json_path)
    for x in np.ndarray.tolist(np.array(np.meshgrid([0, 1], [0, 1])).T.reshape(-1, 2)):
        spins = {v: 2 * s - 1 for v, s in zip(qubo.labels, x)}
        assert qubo.energy(np.array(x)) == pytest.approx(bqm.energy(spins))
        assert from_json.energy(np.array(x)) == pytest.approx(bqm.energy(spins))


def test_format_override_and_aliases(tmp_path):
    path = write(tmp_path, "railway.txt", "# a comment\n6 2\n0 0 -4\n0 1 8\n")
    assert read_qubo(path, format="railway").num_variables == 6
    assert canonical_format("qubo") == "qbsolv" and canonical_format("ORLIB") == "bqp"
    assert canonical_format("gset") == "rudy" and canonical_format(".gms") == "gams"
    with pytest.raises(InputError, match="line 1: expected the number of instances"):
        read_qubo(path, format="bqp")  # a triples file is not an OR-Library file: a clear error
    with pytest.raises(InputError, match="unknown QUBO file format"):
        canonical_format("xlsx")
    with pytest.raises(InputError, match="extension"):
        write_qubo(random_qubo(3, seed=0), tmp_path / "q.txt")


def test_split_instance(tmp_path):
    assert split_instance("a/bqp50.txt#4") == (Path("a/bqp50.txt"), 4)
    assert split_instance("a/bqp50.txt") == (Path("a/bqp50.txt"), None)
    odd = tmp_path / "odd#1"
    odd.write_text("1 0\n")
    assert split_instance(odd) == (odd, None)  # a real file name with '#' wins


# ------------------------------------------------------------------ LP and MPS
def highs_objective(path: Path, names: list[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective and max row violation of each sample, from the file as HiGHS reads it."""
    import highspy  # a declared dependency: MPS export needs it
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    assert highs.readModel(str(path)) in (highspy.HighsStatus.kOk, highspy.HighsStatus.kWarning)
    model = highs.getModel()
    lp = model.lp_
    order = [list(lp.col_names_).index(name) for name in names]
    Xf = X[:, np.argsort(order)].astype(float)  # columns in the file's order
    n = lp.num_col_
    assert list(lp.integrality_) == [highspy.HighsVarType.kInteger] * n
    assert np.all(np.array(lp.col_lower_) == 0) and np.all(np.array(lp.col_upper_) == 1)
    H = np.zeros((n, n))
    hess = model.hessian_
    if hess.dim_:
        Hl = sp.csc_array((hess.value_, hess.index_, hess.start_), shape=(n, n)).toarray()
        H = Hl + np.tril(Hl, -1).T
    obj = Xf @ np.array(lp.col_cost_) + 0.5 * np.einsum("ki,ij,kj->k", Xf, H, Xf) + lp.offset_
    violation = np.zeros(len(X))
    if lp.num_row_:
        a = lp.a_matrix_
        A = sp.csc_array((a.value_, a.index_, a.start_), shape=(lp.num_row_, n))
        act = (A @ Xf.T).T
        violation = np.maximum(np.maximum(np.array(lp.row_lower_) - act, act - np.array(lp.row_upper_)),
                               0).max(axis=1)
    return obj, violation


def small_model() -> BinaryModel:
    """Three shipments with two or three plans, two capacity rows, consolidation savings."""
    labels = ("S001/r0/t1", "S001/r1/t2", "S002/r0/t1", "S002/defer", "S003/r0/t1", "S003/r0/t2", "S003/defer")
    n = len(labels)
    rng = np.random.default_rng(4)
    P = np.zeros((n, n))
    P[0, 2], P[2, 4], P[1, 5] = -3.0, -2.5, -1.25
    A = np.zeros((2, n))
    A[0, [0, 2, 4]] = [20, 30, 25]  # corridor CTU>XIY @ slot 1, wagons
    A[1, [1, 5]] = [1, 1]
    return BinaryModel(labels=labels, c=np.round(rng.uniform(1, 50, n), 2), P=sp.csr_array(P), offset=4.0,
                       groups=((0, 1), (2, 3), (4, 5, 6)), A=sp.csr_array(A), b=np.array([60.0, 1.0]),
                       row_names=("corridor CTU>XIY @ slot 1 (wagons)", "yard XIY @ slot 2 (berths)"))


def all_assignments(n: int) -> np.ndarray:
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.uint8)


def test_model_lp_is_the_same_model_for_dimod(tmp_path):
    model = small_model()
    path = write_model(model, tmp_path / "plan.lp")
    text = path.read_text()
    assert "Subject To" in text and "Binary" in text and "/" not in text.split("Subject To")[1]
    cqm = dimod.lp.loads(text)
    assert len(cqm.constraints) == len(model.groups) + model.num_rows
    X = all_assignments(model.num_variables)
    names = list(cqm.variables)
    written = [lab.replace("/", "_") for lab in model.labels]
    assert sorted(names) == sorted(written)
    for x, objective, feasible in zip(X, model.objective(X), model.is_feasible(X)):
        sample = dict(zip(written, x.tolist()))
        assert cqm.objective.energy(sample) == pytest.approx(objective)
        assert cqm.check_feasible(sample) == feasible


def test_model_mps_is_the_same_model_for_highs(tmp_path):
    import highspy  # noqa: F401  (declared dependency; MPS export needs it)
    model = small_model()
    path = write_model(model, tmp_path / "plan.mps")
    X = all_assignments(model.num_variables)
    objective, violation = highs_objective(path, [lab.replace("/", "_") for lab in model.labels], X)
    np.testing.assert_allclose(objective, model.objective(X))
    np.testing.assert_array_equal(violation <= 1e-9, model.is_feasible(X))


def test_qubo_mps_and_lp_keep_energies(tmp_path):
    qubo = one_hot_qubo(3, 3, seed=2)
    X = all_assignments(qubo.num_variables)
    lp = read_qubo(write_qubo(qubo, tmp_path / "q.lp"))
    X_lp = np.empty_like(X)
    X_lp[:, [lp.index(lab.replace("/", "_")) for lab in qubo.labels]] = X
    np.testing.assert_allclose(lp.energies(X_lp), qubo.energies(X))
    import highspy  # noqa: F401  (declared dependency; MPS export needs it)
    path = write_qubo(qubo, tmp_path / "q.mps")
    objective, _ = highs_objective(path, [lab.replace("/", "_") for lab in qubo.labels], X)
    np.testing.assert_allclose(objective, qubo.energies(X))


def test_constrained_lp_is_not_read_as_a_qubo(tmp_path):
    path = write_model(small_model(), tmp_path / "plan.lp")
    with pytest.raises(InputError, match="constraints"):
        read_qubo(path)


# ------------------------------------------------------------------ bad files
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BQP_OK = "2\n3 2\n1 1 5\n1 3 -2\n2 1\n2 2 7\n"
BAD_FILES = [
    # (name, content, format, field that must be named, words of the reason)
    ("empty.txt", "", None, "file", "empty"),
    ("blank.qubo", "\n \n", None, "file", "empty"),
    ("short.bqp", "1\n3 3\n1 1 5\n1 2 4\n", "bqp", "line 5", "ends after 2 of the 3"),
    ("long.bqp", "1\n3 3\n1 1 5\n1 2 4\n3 1\n3 3 1\n", "bqp", "line 5", "3 fields"),
    ("word.bqp", "1\n3 2\n1 1 5\n1 2 four\n", "bqp", "line 4", "number"),
    ("float_index.bqp", "1\n3 1\n1 1.5 5\n", "bqp", "line 3", "integers"),
    ("range.bqp", "1\n3 1\n1 4 5\n", "bqp", "line 3", "out of range"),
    ("zero.bqp", "1\n3 1\n0 1 5\n", "bqp", "line 3", "out of range"),
    ("twice.bqp", "1\n3 2\n1 2 5\n2 1 5\n", "bqp", "line 4", "listed twice"),
    ("header.bqp", "1\n3\n1 1 5\n", "bqp", "line 2", "'n nnz'"),
    ("count.bqp", "x\n", "bqp", "line 1", "integer"),
    ("pline.qubo", "p qubo 0 3 1\n0 0 1\n", "qbsolv", "line 1", "p qubo"),
    ("diag.qubo", "p qubo 0 3 2 1\n0 0 1\n0 1 2\n1 1 3\n", "qbsolv", "line 3", "diagonal"),
    ("extra.qubo", "p qubo 0 3 1 0\n0 0 1\n1 1 2\n", "qbsolv", "line 3", "more entries"),
    ("range.qubo", "p qubo 0 2 1 1\n0 0 1\n0 2 2\n", "qbsolv", "line 3", "out of range"),
    ("nan.txt", "2 1\n0 1 nan\n", "triples", "line 2", "finite"),
    ("negative.txt", "# c\n-2 1\n0 1 3\n", "triples", "line 2", "at least 0"),
    ("more.txt", "2 1\n0 1 3\n1 1 3\n", "triples", "line 3", "more entries"),
    ("garbage.bin", "\x00\x01 hello world foo\n", None, "format", "cannot tell"),
    ("broken.json", "{\"type\": \"BinaryQuadraticModel\",", "dimod", "line 1", "JSON"),
    ("other.json", "{\"type\": \"Something\"}", "dimod", "type", "BinaryQuadraticModel"),
]


@pytest.mark.parametrize("name, text, fmt, where, reason", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_names_file_line_and_reason(tmp_path, name, text, fmt, where, reason):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as caught:
        read_qubo(path, format=fmt) if fmt else read_qubo(path)
    err = caught.value
    assert err.source == str(path)
    assert any(issue.field == where for issue in err.issues), str(err)
    assert reason in str(err)
    assert str(path) in str(err)


@pytest.mark.parametrize("suffix, reason", [("#3", "numbered 1 to 2"), ("#0", "from 1"),
                                            ("#two", "positive integer"), ("", "choose one")])
def test_instance_selection_errors(tmp_path, suffix, reason):
    path = write(tmp_path, "two.bqp", BQP_OK)
    with pytest.raises(InputError, match=reason) as caught:
        read_qubo(f"{path}{suffix}")
    assert str(path) in str(caught.value)
    assert read_qubo(f"{path}#2").to_dense().tolist() == [[0, 0], [0, -7]]  # maximisation, negated


def test_instance_of_single_instance_format_and_missing_file(tmp_path):
    path = write(tmp_path, "q.txt", "2 1\n0 1 3\n")
    assert read_qubo(f"{path}#1").num_variables == 2
    with pytest.raises(InputError, match="one instance"):
        read_qubo(f"{path}#2")
    with pytest.raises(InputError, match="no such file"):
        read_qubo(tmp_path / "absent.qubo")


def test_skipped_instance_that_is_truncated_is_reported(tmp_path):
    path = write(tmp_path, "cut.bqp", "2\n3 5\n1 1 5\n")
    with pytest.raises(InputError, match="ends inside instance 1"):
        read_qubo(f"{path}#2")


# ------------------------------------------------------------------ what the CLI calls
def test_is_qubo_file_tells_qubo_files_from_problems(tmp_path):
    assert is_qubo_file(write(tmp_path, "b.txt", BQP_OK))
    assert is_qubo_file(f"{tmp_path / 'b.txt'}#2")
    assert is_qubo_file(write(tmp_path, "G1", "3 2\n1 2 1\n2 3 1\n"))  # a Gset graph: no extension
    assert not is_qubo_file(write(tmp_path, "published.json", json.dumps({"n": 2, "qubo": [[0, 1, 1.0]]})))
    assert not is_qubo_file(tmp_path / "problem.toml")
    bqm = write_qubo(random_qubo(3, seed=1), tmp_path / "q.bqm")
    assert is_qubo_file(bqm)
    as_json = tmp_path / "q.json"
    as_json.write_text(json.dumps(dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY").to_serializable()))
    assert is_qubo_file(as_json)


def test_describe_result_restates_bqp_energy_as_published_maximum(shared_data):
    from backends.anneal import AnnealSolver

    (path,) = require_data(shared_data, "bqp/bqp50.txt")
    qubo = read_qubo(f"{path}#1")
    result = AnnealSolver(num_reads=16, num_sweeps=1000).solve(qubo, seed=1, time_limit=10)
    report = describe_result(qubo, result)
    json.dumps(report)  # serialisable as is
    assert report["objective_in_file"] == -report["best_energy"] == 2098  # Beasley's bqp50.1 optimum
    assert report["sense_in_file"] == report["sense"] == "max" and report["instance"] == 1
    assert report["format"] == "bqp"
    assert len(report["best_sample"]) == 50


# ------------------------------------------------------------------ the objective sense
def test_qbsolv_sense_max_negates_and_min_is_the_default(tmp_path):
    path = write(tmp_path, "max.qubo", "c written for qbsolv -m\np qubo 0 3 2 1\n0 0 3\n2 2 -1\n0 2 2\n")
    X = all_assignments(3).astype(int)
    file_objective = 3 * X[:, 0] - X[:, 2] + 2 * X[:, 0] * X[:, 2]
    as_min, as_max = read_qubo(path), read_qubo(path, sense="max")
    assert as_min.metadata["sense"] == "min" and as_max.metadata["sense"] == "max"
    np.testing.assert_allclose(as_min.energies(X), file_objective)
    np.testing.assert_allclose(as_max.energies(X), -file_objective)
    best = int(np.argmin(as_max.energies(X)))
    assert native_objective("qbsolv", as_max.energy(X[best]), "max") == file_objective.max() == 4


@pytest.mark.parametrize("fmt", ["qbsolv", "triples", "npz", "dimod"])
def test_sense_round_trip_and_the_file_keeps_its_convention(tmp_path, fmt):
    qubo = random_qubo(6, seed=3, integer=True)
    path = write_qubo(qubo, tmp_path / f"q.{fmt}", fmt, sense="max")
    X = all_assignments(6)
    np.testing.assert_allclose(read_qubo(path, sense="max").energies(X), qubo.energies(X), atol=1e-9)
    np.testing.assert_allclose(read_qubo(path, sense="min").energies(X), -qubo.energies(X), atol=1e-9)


def test_a_file_that_states_its_sense_refuses_a_contradiction(tmp_path):
    path = write(tmp_path, "max.lp", "Maximize\n obj: 3 x + 2 y\nBinary\n x y\nEnd\n")
    qubo = read_qubo(path)
    assert qubo.metadata["sense"] == "max"
    x = np.array([qubo.index("x"), qubo.index("y")])
    ones = np.ones(2, dtype=np.uint8)
    assert qubo.energy(ones[x]) == -5 and native_objective("lp", qubo.energy(ones), "max") == 5
    assert read_qubo(path, sense="max").metadata["sense"] == "max"
    with pytest.raises(InputError, match="states its objective sense"):
        read_qubo(path, sense="min")
    with pytest.raises(InputError, match="sense: expected one of min, max"):
        read_qubo(write(tmp_path, "q.txt", "2 1\n0 1 3\n"), sense="maximum")


# ------------------------------------------------------------------ detection never guesses
def test_confusable_formats_ask_for_format_and_name_the_candidates(tmp_path):
    # 'n m' then 'i j w' with no index 0 and no index n: 0-based triples and a 1-based graph both fit.
    path = write(tmp_path, "graph", "3 2\n1 2 1\n2 1 4\n")
    with pytest.raises(InputError, match=r"--format \(triples or rudy\)") as caught:
        read_qubo(path)
    assert str(path) in str(caught.value)
    assert read_qubo(path, format="triples").num_variables == 3
    assert read_qubo(path, format="rudy").metadata["format"] == "rudy"
    assert detect_format(write(tmp_path, "zero", "3 1\n0 2 1\n")) == "triples"
    assert detect_format(write(tmp_path, "top", "3 1\n1 3 1\n")) == "rudy"
    assert detect_format(write(tmp_path, "commented", "# railway\n3 1\n1 2 1\n")) == "triples"


def test_detection_of_every_readable_format(tmp_path):
    qubo = random_qubo(4, seed=2)
    for fmt, name in [("qbsolv", "a.qubo"), ("npz", "a.npz"), ("dimod", "a.bqm"), ("lp", "a.lp"),
                      ("mps", "a.mps"), ("qplib", "a.qplib")]:
        path = write_qubo(qubo, tmp_path / name, fmt)
        renamed = path.rename(tmp_path / f"{fmt}-no-extension")
        assert detect_format(renamed) == fmt, fmt
    assert detect_format(write(tmp_path, "b", BQP_OK)) == "bqp"


# ------------------------------------------------------------------ rudy / Gset max-cut graphs
TRIANGLE_AND_TAIL = "4 4\n1 2 1\n2 3 1\n1 3 1\n3 4 5\n"  # max cut: 5 (the tail) + 2 of the triangle


def test_rudy_graph_reads_as_a_maximise_cut_qubo_and_reports_the_cut(tmp_path):
    path = write(tmp_path, "G_small", TRIANGLE_AND_TAIL)
    qubo = read_qubo(path)
    assert qubo.metadata["format"] == "rudy" and qubo.metadata["sense"] == "max"
    X = all_assignments(4)
    edges = [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 1.0), (2, 3, 5.0)]
    cut = sum(w * (X[:, i] != X[:, j]) for i, j, w in edges)  # edges with ends on different sides
    np.testing.assert_allclose(qubo.energies(X), -cut)
    result = create_solver_exact().solve(qubo, seed=0, time_limit=10)
    report = describe_result(qubo, result)
    assert report["objective_in_file"] == cut.max() == 7 and report["sense"] == "max"


def test_rudy_round_trip_and_refusal_of_non_cut_qubos(tmp_path):
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 12, 30), rng.integers(0, 12, 30)
    keep = rows != cols
    from optimizer.qubo.formats.convert import from_edges

    graph = from_edges("max", 12, rows[keep], cols[keep], rng.integers(-3, 4, keep.sum()).astype(float))
    path = write_qubo(graph, tmp_path / "g.rudy")
    back = read_qubo(path, format="rudy")
    X = rng.integers(0, 2, (200, 12))
    np.testing.assert_allclose(back.energies(X), graph.energies(X))
    with pytest.raises(InputError, match="not the cut function of a graph"):
        write_qubo(random_qubo(5, seed=1), tmp_path / "bad.rudy")


RUDY_BAD = [
    ("zero.rudy", "3 1\n0 2 1\n", "line 2", "out of range"),
    ("more.rudy", "3 1\n1 2 1\n2 3 1\n", "line 3", "more edges"),
    ("short.rudy", "3 3\n1 2 1\n", "line 3", "ends after 1 of the 3"),
    ("header.rudy", "3\n1 2 1\n", "line 1", "'n m'"),
    ("weight.rudy", "3 1\n1 2 heavy\n", "line 2", "number"),
]


@pytest.mark.parametrize("name, text, where, reason", RUDY_BAD, ids=[b[0] for b in RUDY_BAD])
def test_malformed_rudy_files(tmp_path, name, text, where, reason):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as caught:
        read_qubo(path, format="rudy")
    assert any(issue.field == where for issue in caught.value.issues) and reason in str(caught.value)


# ------------------------------------------------------------------ QPLIB
# A small binary QP with linear constraints, written for this test in QPLIB's layout (not a
# third-party file): maximise 1/2 x^T H x + b x + 1/2 s.t. x1 + x2 + x3 = 1, 2 x3 + x4 <= 2.
TOY_QBL = """! a comment line
TOY_QBL # problem name
QBL # problem type
maximize # objective sense
4 # variables
2 # constraints
3 # quadratic terms (lower triangle of H)
2 1 -2.0
3 3 4.0
4 2 1.5
1.0 # default linear coefficient
1 # non-default
4 -3.0
0.5 # constant
5 # constraint coefficients
1 1 1
1 2 1
1 3 1
2 3 2
2 4 1
1.0E+30 # infinity
1.0 # default lower bound of the constraints
1
2 -1.0E+30
1.0 # default upper bound
1
2 2.0
0 # default starting point
0
0 # default constraint dual
0
0 # default bound dual
0
4 # variable names
1 a
2 b
3 c
4 d
2 # constraint names
1 pick_one
2 budget
"""


def toy_objective(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The toy's objective and feasibility, computed from its definition (independently of the reader)."""
    X = X.astype(float)
    H = np.zeros((4, 4))
    for i, j, v in [(1, 0, -2.0), (2, 2, 4.0), (3, 1, 1.5)]:
        H[i, j] = H[j, i] = v
    F = 0.5 * np.einsum("ki,ij,kj->k", X, H, X) + X @ np.array([1.0, 1.0, 1.0, -3.0]) + 0.5
    feasible = (X[:, :3].sum(axis=1) == 1) & (2 * X[:, 2] + X[:, 3] <= 2)
    return F, feasible


def test_qplib_binary_instance_reads_into_the_constrained_model_and_solves_with_cpsat(tmp_path):
    from backends.cpsat import CpSatSolver
    from optimizer.qubo.formats import read_model

    path = write(tmp_path, "toy.qplib", TOY_QBL)
    found = read_model(path)
    model = found.model
    assert found.sense == "max" and found.metadata["type"] == "QBL" and model.labels == ("a", "b", "c", "d")
    assert model.groups == ((0, 1, 2),) and model.num_rows == 1 and model.row_names == ("budget",)
    X = all_assignments(4)
    F, feasible = toy_objective(X)
    np.testing.assert_allclose(model.objective(X), -F)  # a minimisation of -F
    np.testing.assert_array_equal(model.is_feasible(X), feasible)
    solution = CpSatSolver(workers=1).solve_model(model, seed=0, time_limit=10)
    assert solution.optimal and found.objective_in_file(solution.objective) == pytest.approx(F[feasible].max())
    with pytest.raises(InputError, match="has 2 constraints"):
        read_qubo(path)


def test_qplib_unconstrained_instance_is_a_qubo_and_round_trips(tmp_path):
    text = "TOY_QBN\nQBN\nminimize\n3\n2\n2 1 4\n3 3 -6\n0\n1\n1 -1\n2\n1E+30\n0\n0\n0\n0\n0\n0\n"
    qubo = read_qubo(write(tmp_path, "toy.qplib", text))
    X = all_assignments(3).astype(int)
    np.testing.assert_allclose(qubo.energies(X), 4 * X[:, 0] * X[:, 1] - 3 * X[:, 2] - X[:, 0] + 2)
    model_path = write_model(small_model(), tmp_path / "plan.qplib")
    from optimizer.qubo.formats import read_model

    back = read_model(model_path).model
    Y = all_assignments(small_model().num_variables)
    np.testing.assert_allclose(back.objective(Y), small_model().objective(Y))
    np.testing.assert_array_equal(back.is_feasible(Y), small_model().is_feasible(Y))


QPLIB_BAD = [
    ("continuous.qplib", TOY_QBL.replace("QBL #", "QCL #"), "line 3", "binary QPLIB instances only"),
    ("quadcons.qplib", TOY_QBL.replace("QBL #", "QBQ #"), "line 3", "quadratic constraints"),
    ("type.qplib", TOY_QBL.replace("QBL #", "XYZ #"), "line 3", "problem type"),
    ("sense.qplib", TOY_QBL.replace("maximize #", "maximise #"), "line 4", "'minimize' or 'maximize'"),
    ("index.qplib", TOY_QBL.replace("4 2 1.5", "5 2 1.5"), "line 10", "out of range"),
    ("value.qplib", TOY_QBL.replace("4 -3.0", "4 minus3"), "line 13", "must be a number"),
    ("short.qplib", TOY_QBL.split("1.0E+30")[0], "line 21", "file ends early"),
    ("twice.qplib", TOY_QBL.replace("4 2 1.5", "1 2 1.5"), "quadratic objective", "listed twice"),
]


@pytest.mark.parametrize("name, text, where, reason", QPLIB_BAD, ids=[b[0] for b in QPLIB_BAD])
def test_malformed_qplib_files(tmp_path, name, text, where, reason):
    from optimizer.qubo.formats import read_model

    with pytest.raises(InputError) as caught:
        read_model(write(tmp_path, name, text))
    assert any(issue.field == where for issue in caught.value.issues), str(caught.value)
    assert reason in str(caught.value)


def test_gams_files_are_refused_with_the_qplib_alternative(tmp_path):
    path = write(tmp_path, "QPLIB_3506.gms", "$offlisting\n* QPLIB_3506\nVariables objvar;\nBinary Variables b1;\n")
    assert detect_format(path) == "gams"
    with pytest.raises(InputError, match=r"GAMS model.*QPLIB_3506\.qplib"):
        read_qubo(path)


# ------------------------------------------------------------------ npz
def test_npz_symmetric_and_triangular_matrices_mean_the_same_qubo(tmp_path):
    rng = np.random.default_rng(8)
    U = np.triu(rng.integers(-5, 6, (5, 5))).astype(float)
    S = (U + U.T) / 2  # the same quadratic form: off-diagonal halves in both triangles
    np.savez(tmp_path / "upper.npz", Q=U, offset=1.5)
    np.savez(tmp_path / "symmetric.npz", Q=S, offset=1.5)
    sp.save_npz(tmp_path / "sparse.npz", sp.csr_array(U))
    X = all_assignments(5).astype(float)
    expected = np.einsum("ki,ij,kj->k", X, U, X)
    for name, offset in (("upper", 1.5), ("symmetric", 1.5), ("sparse", 0.0)):
        np.testing.assert_allclose(read_qubo(tmp_path / f"{name}.npz").energies(X), expected + offset)


def test_npz_written_by_qfreight_is_a_scipy_sparse_file(tmp_path):
    qubo = random_qubo(6, seed=4)
    path = write_qubo(qubo, tmp_path / "q.npz")
    M = sp.load_npz(path)  # scipy reads the matrix part; the offset and labels ride along
    X = all_assignments(6).astype(float)
    np.testing.assert_allclose(np.einsum("ki,ij,kj->k", X, M.toarray(), X) + qubo.offset, qubo.energies(X))


def test_malformed_npz_files(tmp_path):
    np.savez(tmp_path / "two.npz", A=np.eye(2), B=np.eye(2))
    np.savez(tmp_path / "rect.npz", Q=np.ones((2, 3)))
    np.savez(tmp_path / "nan.npz", Q=np.array([[np.nan, 0], [0, 1]]))
    np.savez(tmp_path / "objects.npz", Q=np.array([{"a": 1}], dtype=object))
    for name, reason in [("two", "expected the matrix under key 'Q'"), ("rect", "square"),
                         ("nan", "must be finite"), ("objects", "never unpickles")]:
        with pytest.raises(InputError, match=reason):
            read_qubo(tmp_path / f"{name}.npz")


def test_npz_declaring_a_huge_array_is_refused_before_reading_it(tmp_path):
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1)))
    header["shape"] = (200_000, 200_000)  # 320 GB of float64, in a file of a few hundred bytes
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("Q.npy", buffer.getvalue())
    with pytest.raises(InputError, match="limit on inputs"):
        read_qubo(tmp_path / "bomb.npz")


# ------------------------------------------------------------------ MPS and LP as constrained models
def test_mps_and_lp_models_read_back_as_the_same_model(tmp_path):
    from optimizer.qubo.formats import read_model

    model = small_model()
    X = all_assignments(model.num_variables)
    for fmt in ("mps", "lp"):
        found = read_model(write_model(model, tmp_path / f"plan.{fmt}"))
        back = found.model
        columns = [back.labels.index(label.replace("/", "_")) for label in model.labels]
        X_back = np.empty_like(X)
        X_back[:, columns] = X
        np.testing.assert_allclose(back.objective(X_back), model.objective(X), err_msg=fmt)
        np.testing.assert_array_equal(back.is_feasible(X_back), model.is_feasible(X), err_msg=fmt)
        assert len(back.groups) == len(model.groups) and found.sense == "min"


HAND_MPS = """NAME hand
OBJSENSE
    MAX
ROWS
 N  obj
 L  cap
 E  one
COLUMNS
    MARKER                 'MARKER'                 'INTORG'
    x         obj       3.0        cap       1.0
    x         one       1.0
    y         obj       2.0        cap       2.0
    y         one       1.0
    z         obj       1.0        cap       1.0
    MARKER                 'MARKER'                 'INTEND'
RHS
    RHS       cap       2.0        one       1.0
BOUNDS
 BV BND       x
 BV BND       y
 BV BND       z
QUADOBJ
    x         z         4.0
    z         z         2.0
ENDATA
"""


def test_mps_written_by_hand_states_max_and_reads_its_hessian(tmp_path):
    from optimizer.qubo.formats import read_model

    found = read_model(write(tmp_path, "hand.mps", HAND_MPS))
    X = all_assignments(3).astype(float)
    x, y, z = X.T
    F = 3 * x + 2 * y + z + 0.5 * (2 * 4 * x * z + 2 * z * z)  # c.x + 1/2 x^T H x, H from its lower triangle
    feasible = (x + 2 * y + z <= 2) & (x + y == 1)
    assert found.sense == "max"
    np.testing.assert_allclose(found.model.objective(X), -F)
    np.testing.assert_array_equal(found.model.is_feasible(X), feasible)
    assert found.objective_in_file(float(found.model.objective(X[feasible][np.argmax(F[feasible])])[0])) == \
        pytest.approx(F[feasible].max())
    continuous = write(tmp_path, "cont.mps", HAND_MPS.replace(" BV BND       z\n", " UP BND       z         4.5\n"))
    with pytest.raises(InputError, match="column z"):
        read_model(continuous)


# ------------------------------------------------------------------ readers as contracts
@pytest.mark.timeout(20)
def test_fifo_and_devices_are_refused_without_reading(tmp_path):
    import os

    fifo = tmp_path / "pipe.qubo"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for special, kind in [(fifo, "FIFO"), (Path("/dev/zero"), "character device"),
                          (Path("/dev/urandom"), "character device")]:
        with pytest.raises(InputError, match=kind) as caught:
            read_qubo(special)
        assert str(special) in str(caught.value)
    assert read_qubo.__module__  # the reader returned: nothing blocked


@pytest.mark.timeout(20)
def test_symlinks_to_devices_named_like_inputs_are_refused(tmp_path, capsys):
    from optimizer.cli import main
    from optimizer.solving.config import load_config
    from optimizer.errors import ConfigError

    links = {name: tmp_path / name for name in ("q.qubo", "p.json", "c.toml")}
    for link in links.values():
        link.symlink_to("/dev/urandom")
    with pytest.raises(InputError, match="character device"):
        read_qubo(links["q.qubo"])
    assert not is_qubo_file(links["p.json"])  # decided without reading the device
    with pytest.raises(ConfigError, match="character device"):
        load_config(links["c.toml"])
    assert main(["solve", str(links["q.qubo"]), "--backend", "exact", "--out", str(tmp_path / "o")]) == 2
    assert "character device" in capsys.readouterr().err


def test_inputs_are_capped_in_size(tmp_path, monkeypatch):
    path = write(tmp_path, "q.txt", "2 1\n0 1 3\n" + "# padding\n" * 20)
    assert read_qubo(path).num_variables == 2
    monkeypatch.setenv("QFREIGHT_MAX_INPUT_BYTES", "64")
    with pytest.raises(InputError, match="64-byte limit"):
        read_qubo(path)


HUGE_HEADERS = [
    ("n.txt", "1000000000 1\n0 1 1\n", None, "declares 1,000,000,000 variables"),
    ("m.txt", "3 999999999\n0 1 1\n", None, "declares 999,999,999 entries"),
    ("p.qubo", "p qubo 0 1000000000 0 0\n", None, "declares 1,000,000,000 variables"),
    ("bqp.bqp", "1\n1000000000 1\n1 1 1\n", "bqp", "declares 1,000,000,000 variables"),
    ("count.bqp", "99999999\n3 1\n1 1 1\n", "bqp", "declares 99999999 instances"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name, text, fmt, reason", HUGE_HEADERS, ids=[h[0] for h in HUGE_HEADERS])
def test_header_counts_are_checked_against_the_file_size(tmp_path, name, text, fmt, reason):
    with pytest.raises(InputError, match=reason):
        read_qubo(write(tmp_path, name, text), format=fmt)


def test_non_finite_coefficients_are_refused(tmp_path):
    lp = write(tmp_path, "inf.lp", "Minimize\n obj: 3 x + 1e400 y\nBinary\n x y\nEnd\n")
    with pytest.raises(InputError, match=r"linear coefficient of y: must be finite"):
        read_qubo(lp)
    with pytest.raises(InputError, match="must be finite"):
        read_qubo(write(tmp_path, "inf.qubo", "p qubo 0 2 1 0\n0 0 1e400\n"))
    with pytest.raises(InputError, match="must be finite"):
        read_qubo(write(tmp_path, "inf.bqp", "1\n2 1\n1 2 -inf\n"))


def test_cli_format_choices_list_only_readable_formats():
    from optimizer.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices  # noqa: SLF001
    solve_format = next(a for a in subparsers["solve"]._actions if a.dest == "format").choices  # noqa: SLF001
    export_to = next(a for a in subparsers["export"]._actions if a.dest == "to").choices  # noqa: SLF001
    assert "gams" not in solve_format and "gms" not in solve_format
    readable = {"bqp", "qbsolv", "qubo", "triples", "rudy", "gset", "npz", "dimod", "lp", "mps", "qplib"}
    assert readable <= set(solve_format)
    assert "gams" not in export_to and {"qubo", "rudy", "npz", "qplib", "mps", "lp"} <= set(export_to)


def create_solver_exact():
    from backends import create_solver

    return create_solver("exact", {})


def test_cli_reports_a_cut_and_solves_a_constrained_qplib_model_with_cpsat(tmp_path, capsys):
    from optimizer.cli import main

    graph = write(tmp_path, "G_small", TRIANGLE_AND_TAIL)
    assert main(["solve", str(graph), "--backend", "exact", "--out", str(tmp_path / "g")]) == 0
    assert "objective 7 in the file's max convention" in capsys.readouterr().out
    assert json.loads((tmp_path / "g" / "results.json").read_text())["objective_in_file"] == 7
    toy = write(tmp_path, "toy.qplib", TOY_QBL)
    F, feasible = toy_objective(all_assignments(4))
    assert main(["solve", str(toy), "--backend", "cpsat", "--out", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr().out
    assert "cpsat proven optimal" in printed and f"objective {F[feasible].max():.10g} in the file's max" in printed
    report = json.loads((tmp_path / "t" / "results.json").read_text())
    assert report["feasible"] and report["sense"] == "max" and report["objective_in_file"] == F[feasible].max()
    assert main(["solve", str(toy), "--backend", "anneal", "--out", str(tmp_path / "a")]) == 2
    assert "constrained model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # gms is recognised, not readable: no such --format choice
        main(["solve", str(graph), "--backend", "exact", "--format", "gms"])
    assert usage.value.code == 2 and "invalid choice" in capsys.readouterr().err
