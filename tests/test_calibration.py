"""Calibration by simulation: error rates on null data, power and coverage on planted effects.

A formula can match scipy to the last digit and still flag noise on skewed, small-group,
overdispersed CTRs; these tests run ``feature_summary`` on simulated builds (``tests.simulation``)
and check what an analyst relies on: about 5 % of null tests below p 0.05, rarely any q below
0.05 on a null build, 95 % intervals that hold the truth, and planted effects found.
"""

from __future__ import annotations

import pytest

from tests import simulation


@pytest.mark.parametrize(
    ("scenario", "weighting", "draws", "runs", "features"),
    simulation.NULL_SCENARIOS,
    ids=[f"{s}-{w}" for s, w, *_ in simulation.NULL_SCENARIOS],
)
def test_feature_summary_null_error_rates(scenario, weighting, draws, runs, features):
    """No feature has an effect: p < 0.05 in <= 6 % of tests, any q < 0.05 in <= 7 % of builds, 0 held >= 94 %."""
    rates = simulation.null_rates(scenario, weighting, draws, runs, features, seed=1)
    assert rates.tests >= 9_000
    assert rates.false_positive_rate <= 0.06
    assert rates.any_discovery_rate <= 0.07
    assert rates.coverage >= 0.94
    # Calibrated, not merely conservative: a test that never rejects would pass the bounds above.
    assert rates.false_positive_rate >= 0.035


@pytest.mark.parametrize("weighting", ["mean", "impressions"])
def test_feature_summary_planted_effects_found_and_covered(weighting):
    """+-20-25 % effects on 15 % of 659 images: found at q < 0.05 in >= 80 % of builds, truth held >= 94 %."""
    power = simulation.planted_power(weighting, builds=30, n_null=100, seed=2)
    assert power.found_rate >= 0.80
    assert power.coverage >= 0.94
