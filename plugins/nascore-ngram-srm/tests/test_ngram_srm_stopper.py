"""``srm-stop``: early termination decisions on synthetic curves, pickling."""

from __future__ import annotations

import pickle
from statistics import NormalDist

import numpy as np
import pytest

import nascore
from nascore.errors import ConfigError
from nascore.results import Evaluation
from nascore.testing import check_component
from nascore_ngram_srm.stopper import SRMEarlyStopping

EPOCHS = 12


def curves(n, seed=0):
    rng = np.random.default_rng(seed)
    top, gap, rate = rng.uniform(50, 99, n), rng.uniform(20, 40, n), rng.uniform(0.3, 0.8, n)
    t = np.arange(1, EPOCHS + 1)[None, :]
    return top[:, None] - gap[:, None] * np.exp(-rate[:, None] * t) + rng.normal(0, 0.2, (n, EPOCHS))


def evaluation(i, curve, status="ok"):
    points = [{"epoch": e + 1, "valid_accuracy": float(v), "train_loss": 1.0} for e, v in enumerate(curve)]
    return Evaluation(key=f"k{i}", space="metaqnn", genome={}, status=status,
                      metrics={"valid_accuracy": float(curve[-1])}, curve=points)


#: the paper's rule: one check at 25%, a symmetric normal error on the accuracy scale
PAPER = {"fraction": 0.25, "repeats": 1, "confidence": 0.9, "transform": "none"}


@pytest.fixture(scope="module")
def fitted():
    data = curves(60)
    stopper = SRMEarlyStopping(min_curves=10, **PAPER)
    stopper.update([evaluation(i, c) for i, c in enumerate(data[:40])])
    return stopper, data


def test_conformance():
    check_component("stopper", "srm-stop")


def test_inactive_until_min_curves_complete():
    data = curves(12)
    stopper = SRMEarlyStopping(min_curves=10, repeats=1)
    evals = [evaluation(i, c) for i, c in enumerate(data[:9])]
    evals += [evaluation(100, data[9][:3], "stopped"), evaluation(101, data[10][:5], "failed")]
    stopper.update(evals)
    assert not hasattr(stopper, "srm_") and stopper.best_ == pytest.approx(max(data[:9, -1]))
    assert stopper.should_stop(data[11][:3], EPOCHS) == (False, None)
    stopper.update(evals + [evaluation(9, data[11])])
    assert stopper.n_curves_ == 10 and stopper.T_ == EPOCHS


def test_stops_bad_candidates_after_a_quarter_of_the_epochs(fitted):
    stopper, data = fitted
    assert stopper.check_points(EPOCHS) == [3] and stopper.best_ == pytest.approx(data[:40, -1].max())
    held = data[40:]
    decisions = [stopper.should_stop(c[:3], EPOCHS) for c in held]
    preds = np.array([p for _, p in decisions])
    assert np.corrcoef(preds, held[:, -1])[0, 1] > 0.9
    sigma = stopper.srm_.residual_std(3)
    z = NormalDist().inv_cdf(0.9)
    for (stop, pred), final in zip(decisions, held[:, -1]):
        assert stop == (pred + z * sigma < stopper.best_)
    # clearly hopeless curves stop, a curve heading above the best does not
    assert sum(stop for stop, _ in decisions) >= 10
    good = data[np.argmax(data[:40, -1])] + 1.0
    assert stopper.should_stop(good[:3], EPOCHS)[0] is False


def test_only_checks_at_its_epochs_and_for_its_schedule(fitted):
    stopper, data = fitted
    worst = data[np.argmin(data[:, -1])]
    assert stopper.should_stop(worst[:3], EPOCHS)[0] is True
    assert stopper.should_stop(worst[:4], EPOCHS) == (False, None)
    assert stopper.should_stop(worst[:3], 20) == (False, None)
    again = SRMEarlyStopping(min_curves=10, **{**PAPER, "repeats": 3})
    assert again.check_points(EPOCHS) == [3, 6, 9] and again.check_points(4) == [1, 2, 3]
    again.update([evaluation(i, c) for i, c in enumerate(data[:40])])
    assert list(again.srm_.taus_) == [3, 6, 9]
    assert again.should_stop(worst[:6], EPOCHS)[0] is True and again.should_stop(worst[:7], EPOCHS) == (False, None)


def test_higher_confidence_stops_fewer(fitted):
    _, data = fitted
    counts = []
    for conf in (0.5, 0.9, 0.999):
        s = SRMEarlyStopping(min_curves=10, **{**PAPER, "confidence": conf})
        s.update([evaluation(i, c) for i, c in enumerate(data[:40])])
        counts.append(sum(s.should_stop(c[:3], EPOCHS)[0] for c in data[40:]))
    assert counts[0] >= counts[1] >= counts[2] and counts[0] > counts[2]


def test_default_check_points():
    # defaults chosen on the digits curve set (benchmarks/ngram_srm_acceleration.py): every 15%, 6 times
    assert SRMEarlyStopping().check_points(20) == [3, 6, 9, 12, 15, 18]


def test_quarters_on_the_log_error_scale(fitted):
    _, data = fitted
    stopper = SRMEarlyStopping(min_curves=10, fraction=0.25, repeats=3)
    assert stopper.check_points(20) == [5, 10, 15] and stopper.check_points(EPOCHS) == [3, 6, 9]
    stopper.update([evaluation(i, c) for i, c in enumerate(data[:40])])
    assert stopper.srm_.target_transform == "log-error" and list(stopper.srm_.taus_) == [3, 6, 9]
    # the bound is the 0.999 quantile of N(t_pred, sigma_t^2) on t = -log(100.5 - acc), mapped back
    z, top = NormalDist().inv_cdf(0.999), 100.5
    decisions = [(stopper.should_stop(c[:3], EPOCHS), c[-1]) for c in data[40:]]
    for (stop, pred), final in decisions:
        sigma = stopper.srm_.residual_std(3)
        bound = top - (top - pred) * np.exp(-z * sigma)
        assert bound > pred and stop == (bound < stopper.best_)
    assert sum(stop for (stop, _), _ in decisions) >= 15
    # the best's own curve, and one heading above it, go on from the 6-epoch check; at the
    # first check (3 epochs) this lone outlier at the top is underpredicted and would be
    # stopped (the risk of an early check, see the docs)
    leader = data[np.argmax(data[:40, -1])]
    assert stopper.should_stop(leader[:3], EPOCHS)[0] is True
    for k in (6, 9):
        assert stopper.should_stop(leader[:k], EPOCHS)[0] is False
        assert stopper.should_stop(leader[:k] + 1.0, EPOCHS)[0] is False
    # nothing stopped ends above the best seen; the predictions track the finals
    assert all(final < stopper.best_ for (stop, _), final in decisions if stop)
    preds = np.array([p for (_, p), _ in decisions])
    assert np.corrcoef(preds, data[40:, -1])[0, 1] > 0.9


def test_pickles_with_its_fitted_models(fitted):
    stopper, data = fitted
    again = pickle.loads(pickle.dumps(stopper))
    for c in data[40:50]:
        assert again.should_stop(c[:3], EPOCHS) == stopper.should_stop(c[:3], EPOCHS)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="fraction"):
        nascore.create("stopper", "srm-stop", fraction=1.5)
    with pytest.raises(ConfigError, match="regressor"):
        nascore.create("stopper", "srm-stop", regressor="svm")
