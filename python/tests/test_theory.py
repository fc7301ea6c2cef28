"""test_theory.py -- ncelab.theory calls the C library: the same records as the CLI's JSON, the
loss and gradient of `ncelab theory eval`, and the library's messages as ValueError."""
import json

import numpy as np
import pytest

from conftest import run
from ncelab import theory


def cli_json(binary, tmp_path, *args):
    path = tmp_path / "out.json"
    run(binary, *args, "--json", path)
    return json.loads(path.read_text())


# The library in this process and the CLI run the same code, but the solver's sums depend on the
# number of OpenMP threads (so does the CLI's output from one machine to another): they agree to
# rounding, and quantities that are zero at the optimum (the certificate's gap and KKT residual,
# about 1e-10) agree in absolute terms.
REL, ABS = 1e-9, 1e-8


def close(a, b, where):
    if isinstance(b, dict):
        assert isinstance(a, dict) and set(a) == set(b), where
        for k in b:
            close(a[k], b[k], where + "." + k)
    elif isinstance(b, float) or isinstance(a, float):
        assert a == pytest.approx(b, rel=REL, abs=ABS), where
    else:
        assert a == b, where


def same_record(py, cli):
    assert set(py) == set(cli)
    for key, v in cli.items():
        if key in ("seconds", "iterations", "starts"):  # the solver's path, not its result
            continue
        if key in ("gram", "norms"):
            np.testing.assert_allclose(py[key], np.array(v, dtype=np.float64), rtol=REL, atol=ABS, err_msg=key)
        else:
            close(py[key], v, key)


def test_solve_equals_cli(ncelab_bin, tmp_path):
    doc = cli_json(ncelab_bin, tmp_path, "theory", "--classes", 4, "--rho", "zipf:1", "--k", "1,4,64")
    model, recs = theory.solve("zipf:1", [1, 4, 64], classes=4, with_model=True)
    assert model == doc["model"]
    assert [r["k"] for r in recs] == [1, 4, 64] and len(doc["results"]) == 3
    for py, cli in zip(recs, doc["results"]):
        same_record(py, cli)
    assert recs[2]["gram"].shape == (4, 4) and recs[2]["certificate"]["optimal"]
    one = theory.solve("zipf:1", 4, classes=4)
    assert isinstance(one, dict) and one["nce_loss"] == recs[1]["nce_loss"]


def test_solve_prior_array_and_support(ncelab_bin, tmp_path):
    rho = np.array([0.5, 0.3, 0.2])
    support = np.array([[0.8, 0.1, 0.1, 0.0], [0.1, 0.8, 0.0, 0.1], [0.0, 0.1, 0.1, 0.8]])
    path = tmp_path / "support.json"
    path.write_text(json.dumps(support.tolist()))
    doc = cli_json(ncelab_bin, tmp_path, "theory", "--rho", "0.5,0.3,0.2", "--support", path, "--k", "1..8",
                   "--norm", 2, "--dim", 3, "--loss", "nce")
    recs = theory.solve(rho, "1..8", R=2, support=support, dim=3, loss="nce")
    assert [r["k"] for r in recs] == [1, 2, 4, 8]
    for py, cli in zip(recs, doc["results"]):
        same_record(py, cli)
    from_file = theory.solve("0.5,0.3,0.2", 2, R=2, support=str(path), dim=3, loss="nce")
    same_record(from_file, doc["results"][1])


def test_population_loss_equals_cli_eval(ncelab_bin, tmp_path):
    rng = np.random.default_rng(3)
    F = rng.normal(size=(5, 5))
    F *= 0.9 / np.linalg.norm(F, axis=1, keepdims=True)
    G = F @ F.T  # positive definite, diagonal 0.81: room for the finite differences below
    path = tmp_path / "gram.json"
    path.write_text(json.dumps(G.tolist()))
    doc = cli_json(ncelab_bin, tmp_path, "theory", "eval", "--gram", path, "--rho", "zipf:0.7", "--k", 16)
    loss, grad = theory.population_loss(G, "zipf:0.7", 16)
    assert loss == pytest.approx(doc["nce_loss"], rel=REL)
    np.testing.assert_allclose(grad, np.array(doc["grad"]), rtol=REL, atol=ABS)
    # the gradient is dL/dG: a symmetric step along D changes the loss by <grad, D>
    D = rng.normal(size=(5, 5))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0)
    h = 1e-5
    fd = (theory.population_loss(G + h * D, "zipf:0.7", 16)[0] - theory.population_loss(G - h * D, "zipf:0.7", 16)[0]) / (2 * h)
    assert abs(fd - np.sum(grad * D)) < 1e-7


@pytest.mark.parametrize("call, message", [
    (lambda: theory.solve([0.5, 0.6], 1), "--rho: probabilities sum to 1.1"),
    (lambda: theory.solve("zipf:x", 1, classes=3), "--rho zipf:S: expected a number"),
    (lambda: theory.solve("uniform", 1), "needs the number of classes"),
    (lambda: theory.solve("uniform", 0, classes=3), "--k: 0 is out of range"),
    (lambda: theory.solve("uniform", 4, classes=3, R=0), "--norm: R must be in"),
    (lambda: theory.solve("uniform", 4, classes=3, loss="hinge"), "loss"),
    (lambda: theory.solve("uniform", 4, support=[[0.5, 0.5], [0.5, 0.4]]), "support: row 2 sums to 0.9"),
    (lambda: theory.solve("uniform", 4, support="/nonexistent/support.json"), "/nonexistent/support.json"),
    (lambda: theory.population_loss(2 * np.eye(3), "uniform", 4), r"G: diagonal entry 1 is 2 > R\^2"),
    (lambda: theory.population_loss([[1, 0.5], [0.2, 1]], "uniform", 4), "G: not symmetric"),
    (lambda: theory.population_loss([[1, 1], [1, -1]], "uniform", 4), "G: diagonal entry|positive semidefinite"),
    (lambda: theory.population_loss(np.eye(3), [0.5, 0.5], 4), "G: a 3 x 3 matrix, but the model has 2 points"),
    (lambda: theory.population_loss(np.eye(3), "uniform", 0), r"--k: 0 is not in \[1, 1000000000\]"),
    (lambda: theory.population_loss(np.ones(3), "uniform", 4), "G: a square M x M matrix"),
])
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
