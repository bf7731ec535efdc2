"""Tests of the running-time calculator: textbook sample sizes and days to reach them."""

import pytest

from experiments.stats import required_sample_size_per_variant, running_time_days

Z_SUM_SQUARED = (1.959963984540054 + 0.8416212335729143) ** 2  # (z_0.975 + z_0.8)²


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # 10% conversion, +10% relative: (z + z)²·(0.1·0.9 + 0.11·0.89)/0.01² ≈ 14,748.1.
        ({"baseline_mean": 0.1, "minimum_detectable_effect": 0.1}, 14749),
        # Passing the pooled variance p(1 − p) instead gives the equal-variance figure.
        ({"baseline_mean": 0.1, "variance": 0.09, "minimum_detectable_effect": 0.1}, 14128),
        # Mean 10, σ² 4, +10%: δ = 1, n = (z + z)²·8 ≈ 62.8.
        ({"baseline_mean": 10.0, "variance": 4.0, "minimum_detectable_effect": 0.1}, 63),
        ({"baseline_mean": -10.0, "variance": 4.0, "minimum_detectable_effect": 0.1}, 63),
        # Stricter test: (z_0.995 + z_0.9)²·8/0.5² ≈ 476.1.
        (
            {"baseline_mean": 10.0, "variance": 4.0, "minimum_detectable_effect": 0.05, "alpha": 0.01, "power": 0.9},
            477,
        ),
    ],
)
def test_required_sample_size_per_variant(arguments, expected):
    assert required_sample_size_per_variant(**arguments) == expected


def test_sample_size_follows_the_formula():
    size = required_sample_size_per_variant(baseline_mean=5.0, variance=9.0, minimum_detectable_effect=0.2)

    assert size - 1 < Z_SUM_SQUARED * 2 * 9.0 / 1.0**2 <= size


@pytest.mark.parametrize(
    ("sample_size", "variants", "rate", "days"),
    [(14749, 2, 1000, 30), (1000, 2, 2000, 1), (1000, 3, 100, 30)],
)
def test_running_time_days(sample_size, variants, rate, days):
    assert running_time_days(sample_size, variants, rate) == days


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"baseline_mean": 0.1, "minimum_detectable_effect": 0}, "minimum_detectable_effect must be positive"),
        ({"baseline_mean": 0.1, "minimum_detectable_effect": -0.1}, "minimum_detectable_effect must be positive"),
        ({"baseline_mean": 0.1, "minimum_detectable_effect": 0.1, "alpha": 0}, "alpha must be between 0 and 1"),
        ({"baseline_mean": 0.1, "minimum_detectable_effect": 0.1, "power": 1}, "power must be between 0 and 1"),
        ({"baseline_mean": 0.0, "minimum_detectable_effect": 0.1}, "conversion-rate baseline_mean"),
        ({"baseline_mean": 1.2, "minimum_detectable_effect": 0.1}, "conversion-rate baseline_mean"),
        ({"baseline_mean": 0.6, "minimum_detectable_effect": 1.0}, "raised by minimum_detectable_effect"),
        ({"baseline_mean": 10, "variance": 0, "minimum_detectable_effect": 0.1}, "variance must be positive"),
        ({"baseline_mean": 0, "variance": 4, "minimum_detectable_effect": 0.1}, "baseline_mean must not be 0"),
    ],
)
def test_invalid_sample_size_inputs(arguments, message):
    with pytest.raises(ValueError, match=message):
        required_sample_size_per_variant(**arguments)


@pytest.mark.parametrize(
    ("sample_size", "variants", "rate", "message"),
    [
        (0, 2, 100, "sample_size_per_variant must be positive"),
        (100, 1, 100, "at least 2 variants"),
        (100, 2, 0, "exposure_rate_per_day must be positive"),
    ],
)
def test_invalid_running_time_inputs(sample_size, variants, rate, message):
    with pytest.raises(ValueError, match=message):
        running_time_days(sample_size, variants, rate)
