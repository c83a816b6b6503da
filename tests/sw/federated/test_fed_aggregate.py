from fractions import Fraction

import numpy as np
import pytest

from trident.sw.federated.aggregate import check_sample_count, check_update, fedavg_exact


def _random_half(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float16)


def _updates(seed=0, k=5, shape=(7, 9)):
    rng = np.random.default_rng(seed)
    return [(w, int(rng.integers(10, 600)), {"a": _random_half(rng, shape), "b": _random_half(rng, (3,), 1e-4)})
            for w in range(k)]


def test_matches_the_documented_contract_bit_for_bit():
    updates = _updates()
    got = fedavg_exact(updates)
    n = sum(u[1] for u in updates)
    for name in ("a", "b"):
        expect = np.empty(updates[0][2][name].shape, dtype=np.float16)
        for i in np.ndindex(expect.shape):
            acc = 0.0                                   # Python floats are IEEE float64
            for _, n_k, arrays in updates:              # ascending worker id
                acc = acc + float(n_k) * float(arrays[name][i])
            expect[i] = np.float64(acc / n).astype(np.float16)
        assert got[name].dtype == np.float16
        assert np.array_equal(got[name].view(np.uint16), expect.view(np.uint16))


def test_within_half_an_ulp_of_the_exact_mean():
    updates = _updates(seed=4, shape=(50,))
    got = fedavg_exact(updates)["a"]
    n = sum(u[1] for u in updates)
    for i in range(50):
        exact = sum(Fraction(n_k) * Fraction(float(a["a"][i])) for _, n_k, a in updates) / n
        ulp = float(np.spacing(np.float16(abs(float(exact)))))
        assert abs(float(got[i]) - float(exact)) <= ulp / 2 + 1e-30


def test_order_of_arrival_does_not_matter():
    updates = _updates(seed=2)
    a = fedavg_exact(updates)
    b = fedavg_exact(list(reversed(updates)))
    assert all(np.array_equal(a[k].view(np.uint16), b[k].view(np.uint16)) for k in a)


def test_extremes_stay_finite_and_subnormals_survive():
    big = {"a": np.full((4,), 65504.0, np.float16)}
    tiny = {"a": np.full((4,), 2.0 ** -24, np.float16)}
    out = fedavg_exact([(0, 3, big), (1, 1, big)])
    assert np.all(out["a"] == np.float16(65504.0))
    out = fedavg_exact([(0, 1, tiny), (1, 1, tiny)])
    assert np.all(out["a"] == np.float16(2.0 ** -24))


def test_duplicates_and_empty_are_refused():
    u = _updates(k=2)
    with pytest.raises(ValueError, match="duplicate"):
        fedavg_exact([u[0], u[0]])
    with pytest.raises(ValueError, match="nothing"):
        fedavg_exact([])


def test_validation_names_what_is_wrong():
    ref = {"w1": np.zeros((4, 3), np.float16), "w2": np.zeros((2,), np.float16)}
    good = {k: v.copy() for k, v in ref.items()}
    assert check_update(good, ref) is None
    bad = dict(good, w1=np.zeros((4, 2), np.float16))
    assert "shape (4, 2), expected (4, 3)" in check_update(bad, ref)
    bad = dict(good, w2=np.zeros((2,), np.float32))
    assert "dtype float32" in check_update(bad, ref)
    nan = {k: v.copy() for k, v in ref.items()}
    nan["w1"][0, 0] = np.nan
    nan["w1"][1, 1] = np.inf
    assert "2 non-finite values (1 NaN, 1 ±Inf)" in check_update(nan, ref)
    assert "missing w2" in check_update({"w1": good["w1"]}, ref)
    assert "unexpected extra" in check_update(dict(good, extra=good["w2"]), ref)
    assert check_sample_count(12) is None
    for value in (0, -3, 2.5, "12", True, float("nan")):
        assert check_sample_count(value) is not None
