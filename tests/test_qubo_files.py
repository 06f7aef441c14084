"""QUBO files in and out: sign conventions, round trips, LP/MPS export and bad files.

Public files used (see ../shared/data/README.md):
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
from optimizer.qubo.formats import FORMATS, canonical_format, count_instances, describe_result, detect_format, is_qubo_file, native_objective, read_qubo, read_qubos, split_instance, write_model, write_qubo
from tests.conftest import one_hot_qubo, random_qubo


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
    path = shared_data / "bqp" / "bqp50.txt"
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
TEXT_FORMATS = ["bqp", "qbsolv", "triples", "dimod", "lp"]


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
    if fmt == "lp":  # LP keeps names (made LP-valid), not necessarily the order
        columns = [back.index(label.replace("/", "_")) for label in qubo.labels]
        X_back = np.empty_like(X)
        X_back[:, columns] = X
    else:
        X_back = X
    # bqp has no constant term: the offset is dropped, nothing else changes.
    lost = 0.0 if FORMATS[fmt].keeps_offset else qubo.offset
    np.testing.assert_allclose(back.energies(X_back), qubo.energies(X) - lost, rtol=1e-12, atol=1e-9)
    if fmt in ("qbsolv", "triples", "dimod"):
        assert back.labels == qubo.labels


def test_round_trip_of_public_bqp_instance_is_byte_stable(shared_data, tmp_path):
    qubo = read_qubo(shared_data / "bqp" / "bqp50.txt#7")
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


def test_format_override_and_aliases(shared_data, tmp_path):
    path = shared_data / "railway_qubo" / "qubo_1t_delays_no_2_2.0_4.0.qubo.txt"
    assert read_qubo(path, format="railway").num_variables == 6
    assert canonical_format("qubo") == "qbsolv" and canonical_format("ORLIB") == "bqp"
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
def test_is_qubo_file_tells_qubo_files_from_problems(shared_data, tmp_path):
    assert is_qubo_file(shared_data / "bqp" / "bqp50.txt")
    assert is_qubo_file(f"{shared_data / 'bqp' / 'bqp50.txt'}#2")
    assert is_qubo_file(shared_data / "railway_qubo" / "qubo_1t_delays_no_2_2.0_4.0.qubo.txt")
    assert not is_qubo_file(shared_data / "railway_qubo" / "qubo_1t_delays_no_2_2.0_4.0.json")
    assert not is_qubo_file(tmp_path / "problem.toml")
    bqm = write_qubo(random_qubo(3, seed=1), tmp_path / "q.bqm")
    assert is_qubo_file(bqm)
    as_json = tmp_path / "q.json"
    as_json.write_text(json.dumps(dimod.BQM({"a": 1.0}, {}, 0.0, "BINARY").to_serializable()))
    assert is_qubo_file(as_json)


def test_describe_result_restates_bqp_energy_as_published_maximum(shared_data):
    from backends.anneal import AnnealSolver

    qubo = read_qubo(f"{shared_data / 'bqp' / 'bqp50.txt'}#1")
    result = AnnealSolver(num_reads=16, num_sweeps=1000).solve(qubo, seed=1, time_limit=10)
    report = describe_result(qubo, result)
    json.dumps(report)  # serialisable as is
    assert report["objective_in_file"] == -report["best_energy"] == 2098  # Beasley's bqp50.1 optimum
    assert report["sense_in_file"] == "max" and report["instance"] == 1 and report["format"] == "bqp"
    assert len(report["best_sample"]) == 50
