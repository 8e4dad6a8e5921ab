import numpy as np
import pytest

from metaecom.cases import synthetic


def test_stores_are_deterministic_and_prefix_stable():
    a = synthetic.sample_stores(5, np.random.default_rng(0))
    b = synthetic.sample_stores(50, np.random.default_rng(0))
    np.testing.assert_array_equal(a.size, b.size[:5])
    np.testing.assert_array_equal(a.sensitivity, b.sensitivity[:5])


def test_parameters_lie_in_their_ranges():
    stores = synthetic.sample_stores(10_000, np.random.default_rng(1))
    for values, (low, high) in [(stores.size, synthetic.SIZE), (stores.reference_price, synthetic.REFERENCE_PRICE),
                                (stores.sensitivity, synthetic.SENSITIVITY)]:
        assert low <= values.min() and values.max() <= high
        assert values.max() - values.min() > 0.95 * (high - low)  # the whole range is used


def test_mean_demand_is_the_logistic_curve():
    stores = synthetic.sample_stores(3, np.random.default_rng(2))
    prices = np.array([1.0, 4.5, 9.0])
    expected = stores.size[:, None] / (1 + np.exp(stores.sensitivity[:, None] * (prices - stores.reference_price[:, None])))
    np.testing.assert_allclose(stores.mean_demand(prices), expected, rtol=1e-12)
    # half the customers buy exactly at the reference price
    np.testing.assert_allclose(stores.mean_demand(stores.reference_price[:, None])[:, 0], stores.size / 2)


def test_observations_are_poisson_around_the_curve():
    store = synthetic.sample_stores(1, np.random.default_rng(3))
    prices, sales = store.observe(200_000, np.random.default_rng(4))
    assert prices.shape == sales.shape == (1, 200_000)
    assert synthetic.PRICE_LOW <= prices.min() and prices.max() <= synthetic.PRICE_HIGH
    assert np.all(sales == np.round(sales)) and sales.min() >= 0
    residual = sales - store.mean_demand(prices)
    # Poisson: mean residual 0 and variance equal to the mean
    assert abs(residual.mean()) < 0.1
    assert abs(residual.var() / store.mean_demand(prices).mean() - 1) < 0.02


def test_scalings_round_trip():
    demand = np.array([[0.0, 50.0, 160.0]])
    np.testing.assert_allclose(synthetic.demand_from_output(synthetic.demand_target(demand)), demand)
    assert synthetic.price_features(np.array([1.0, 10.0])).shape == (2, 1)


def test_bad_input():
    with pytest.raises(ValueError, match="at least one store"):
        synthetic.sample_stores(0, np.random.default_rng(0))
    stores = synthetic.sample_stores(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"shape \[m\] or \[2, m\]"):
        stores.mean_demand(np.ones((3, 4)))
    with pytest.raises(ValueError, match="k must be >= 0"):
        stores.observe(-1, np.random.default_rng(0))


# --- sinusoids ---------------------------------------------------------------------------

def test_sinusoid_task_shapes_and_ranges():
    sx, sy, qx, qy = synthetic.sinusoid_task(np.random.default_rng(0), k_shot=10, n_query=25)
    assert sx.shape == (10, 1) and sy.shape == (10,) and qx.shape == (25, 1) and qy.shape == (25,)
    xs = np.concatenate([sx, qx])[:, 0]
    assert -5 <= xs.min() and xs.max() <= 5
    assert np.abs(np.concatenate([sy, qy])).max() <= 5.0


def test_sinusoid_task_is_reproducible_with_a_seed():
    a = synthetic.sinusoid_task(np.random.default_rng(3), 5, 5)
    b = synthetic.sinusoid_task(np.random.default_rng(3), 5, 5)
    c = synthetic.sinusoid_task(np.random.default_rng(4), 5, 5)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


def test_sinusoid_task_targets_follow_the_curve():
    amplitudes, phases = synthetic.sample_sinusoids(20, np.random.default_rng(1))
    for amplitude, phase in zip(amplitudes, phases):
        sx, sy, qx, qy = synthetic.sinusoid_task(np.random.default_rng(2), 7, 9, amplitude=amplitude, phase=phase)
        np.testing.assert_allclose(sy, amplitude * np.sin(sx[:, 0] - phase), rtol=1e-12)
        np.testing.assert_allclose(qy, synthetic.sinusoid(qx[:, 0], amplitude, phase), rtol=1e-12)


def test_sinusoid_parameters_lie_in_their_ranges():
    amplitudes, phases = synthetic.sample_sinusoids(10_000, np.random.default_rng(5))
    assert 0.1 <= amplitudes.min() and amplitudes.max() <= 5.0
    assert 0.0 <= phases.min() and phases.max() <= np.pi
    assert amplitudes.max() - amplitudes.min() > 0.95 * 4.9
    # the amplitude of a drawn task is recovered from dense noise-free samples
    sx, sy, _, _ = synthetic.sinusoid_task(np.random.default_rng(6), 20_000, 0, x_range=(0, 2 * np.pi))
    assert 0.1 <= np.abs(sy).max() <= 5.0


def test_sinusoid_task_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k_shot"):
        synthetic.sinusoid_task(rng, 0, 5)
    with pytest.raises(ValueError, match="n_query"):
        synthetic.sinusoid_task(rng, 5, -1)
    with pytest.raises(ValueError, match="x_range"):
        synthetic.sinusoid_task(rng, 5, 5, x_range=(1, 1))
    with pytest.raises(ValueError, match="amplitude range"):
        synthetic.sinusoid_task(rng, 5, 5, amplitude=(2, 1))
    with pytest.raises(ValueError, match="at least one sinusoid"):
        synthetic.sample_sinusoids(0, rng)


def test_pooled_store_model_learns_the_average_store_and_checks_its_input():
    import torch

    from metaecom.cases import synthetic
    from metaecom.seeding import stream

    stores = synthetic.sample_stores(50, stream(0, 0))
    prices, sales = stores.observe(10, stream(0, 1))
    x = torch.as_tensor(synthetic.price_features(prices.reshape(1, -1)), dtype=torch.float32)
    y = synthetic.demand_target(sales.reshape(1, -1))

    def pooled_mse(steps):
        torch.manual_seed(0)
        model = synthetic.pooled_store_model(prices, sales, steps=steps, lr=1e-2, device="cpu")
        with torch.no_grad():
            return float(((model(x).numpy() - y) ** 2).mean())

    assert pooled_mse(200) < 0.5 * pooled_mse(0)
    with pytest.raises(ValueError, match="one shape"):
        synthetic.pooled_store_model(prices, sales[:, :3], steps=1, lr=1e-2, device="cpu")


def test_stream_gives_each_purpose_its_own_draws():
    from metaecom.seeding import stream

    assert stream(0, 1).integers(1 << 30) == stream(0, 1).integers(1 << 30)
    assert stream(0, 1).integers(1 << 30) != stream(0, 2).integers(1 << 30)
    assert stream(0, 1).integers(1 << 30) != stream(1, 1).integers(1 << 30)
