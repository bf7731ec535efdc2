"""Reading PostHog's `stats_config` dict, with a default for every missing key."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_CI_LEVEL = 0.95
DEFAULT_ALPHA = 0.05
DEFAULT_SEQUENTIAL_TUNING = 5000


def _section(stats_config: Mapping, name: str) -> Mapping:
    section = stats_config.get(name)
    return section if isinstance(section, Mapping) else {}


def _value(section: Mapping, name: str, default: Any) -> Any:
    value = section.get(name)
    return default if value is None else value


@dataclass(frozen=True)
class StatsConfig:
    method: str
    relative: bool
    ci_level: float
    alpha: float
    sequential: bool
    sequential_tuning: float
    cuped: bool

    @classmethod
    def from_dict(cls, stats_config: Mapping | None) -> "StatsConfig":
        """Anything but method "frequentist" is Bayesian, and anything but "absolute" is a relative effect."""
        stats_config = stats_config or {}
        frequentist = _section(stats_config, "frequentist")
        cuped = stats_config.get("cuped")
        return cls(
            method="frequentist" if stats_config.get("method") == "frequentist" else "bayesian",
            relative=stats_config.get("difference_type") != "absolute",
            ci_level=_value(_section(stats_config, "bayesian"), "ci_level", DEFAULT_CI_LEVEL),
            alpha=_value(frequentist, "alpha", DEFAULT_ALPHA),
            sequential=bool(frequentist.get("sequential")),
            sequential_tuning=_value(frequentist, "sequential_tuning", DEFAULT_SEQUENTIAL_TUNING),
            cuped=bool(cuped.get("enabled")) if isinstance(cuped, Mapping) else bool(cuped),
        )
