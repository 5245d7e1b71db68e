"""Temperature scaling: the fitted temperature is the minimum of the validation negative log-likelihood."""
import pytest
import torch

from emoxformer.training.calibration import fit_temperature


def _validation(rows: int, signal: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that favour the true class by `signal` in 70 % of rows: over- or under-confident by `signal`."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 7, (rows,), generator=generator)
    knows = (torch.rand(rows, 1, generator=generator) < 0.7).float()
    logits = torch.randn(rows, 7, generator=generator) + signal * knows * torch.nn.functional.one_hot(labels, 7)
    return logits, labels


def _nll(logits, labels, temperature: float) -> float:
    return float(torch.nn.functional.cross_entropy(logits.double() / temperature, labels))


@pytest.mark.parametrize("signal", [0.5, 3.0, 30.0])
def test_the_temperature_minimises_validation_nll(signal):
    logits, labels = _validation(500, signal)
    fitted = fit_temperature(logits, labels)
    assert 0.05 < fitted < 20.0
    grid = torch.logspace(-1.3, 1.3, 2001, dtype=torch.float64).tolist()
    on_grid = min(grid, key=lambda t: _nll(logits, labels, t))
    assert fitted == pytest.approx(on_grid, rel=2e-3)  # grid points are 0.3 % apart
    assert _nll(logits, labels, fitted) <= _nll(logits, labels, on_grid)
    for nearby in (fitted * 0.999, fitted * 1.001):
        assert _nll(logits, labels, fitted) < _nll(logits, labels, nearby)


def test_an_optimum_beyond_the_bounds_gives_the_bound():
    logits, labels = _validation(300, 0.0)  # no signal: the loss falls as T grows without limit
    assert fit_temperature(logits, labels) == 20.0
    # always right and by a wide margin: the loss falls as T shrinks towards 0
    confident = torch.nn.functional.one_hot(labels, 7).float() * 2.0
    assert fit_temperature(confident, labels) == 0.05
    assert fit_temperature(confident, labels, bounds=(0.5, 4.0)) == 0.5


def test_a_scaled_copy_of_the_logits_gets_a_scaled_temperature():
    logits, labels = _validation(400, 3.0)
    assert fit_temperature(logits * 2.5, labels) == pytest.approx(2.5 * fit_temperature(logits, labels), rel=1e-7)


def test_no_rows_or_broken_logits_are_refused_not_fitted():
    logits, labels = _validation(50, 3.0)
    broken = logits.clone()
    broken[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_temperature(broken, labels)
    with pytest.raises(ValueError, match="0 rows"):
        fit_temperature(logits[:0], labels[:0])
