"""Experiment health findings, each with a code, a severity and a message (PostHog's `health/checks`, with
GrowthBook's thresholds where PostHog has none). Pure: callers pass what they know; a check without its inputs
does not run.

Checks: sample-ratio mismatch, the `$multiple` share (units seen in several variants), zero or too few exposures,
no metric, and the flag's state (inactive or a variant forced for everyone while running).
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from experiments import messages

from .health import SRM_P_VALUE_THRESHOLD

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITIES = (CRITICAL, WARNING, INFO)
HEALTHY, UNHEALTHY, NOT_ENOUGH_TRAFFIC = "healthy", "unhealthy", "not-enough-traffic"
HEALTH_STATUSES = (HEALTHY, UNHEALTHY, NOT_ENOUGH_TRAFFIC)
MULTIPLE_SHARE_THRESHOLD = 0.01
MULTIPLE_MIN_UNITS = 10
SRM_MIN_UNITS_PER_VARIANT = 8
MIN_EXPOSURES_PER_VARIANT = 50
ZERO_EXPOSURES_AFTER_HOURS = 24

SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"
MULTIPLE_EXPOSURES = "multiple_exposures"
ZERO_EXPOSURES = "zero_exposures"
TOO_FEW_EXPOSURES = "too_few_exposures"
NO_METRIC = "no_metric"
FLAG_OFF_WHILE_RUNNING = "flag_off_while_running"
VARIANT_FORCED_WHILE_RUNNING = "variant_forced_while_running"

MESSAGES = {
    SAMPLE_RATIO_MISMATCH: messages.HEALTH_SAMPLE_RATIO_MISMATCH,
    MULTIPLE_EXPOSURES: messages.HEALTH_MULTIPLE_EXPOSURES,
    ZERO_EXPOSURES: messages.HEALTH_ZERO_EXPOSURES,
    TOO_FEW_EXPOSURES: messages.HEALTH_TOO_FEW_EXPOSURES,
    NO_METRIC: messages.HEALTH_NO_METRIC,
    FLAG_OFF_WHILE_RUNNING: messages.HEALTH_FLAG_OFF_WHILE_RUNNING,
    VARIANT_FORCED_WHILE_RUNNING: messages.HEALTH_VARIANT_FORCED_WHILE_RUNNING,
}


@dataclass(frozen=True)
class HealthFinding:
    code: str
    severity: str
    message: str


def srm_status(counts: Mapping[str, int], p_value: float) -> str:
    """GrowthBook's rule: not-enough-traffic below 8 units per variant, unhealthy at p < 0.001."""
    if sum(counts.values()) < SRM_MIN_UNITS_PER_VARIANT * len(counts):
        return NOT_ENOUGH_TRAFFIC
    return UNHEALTHY if p_value < SRM_P_VALUE_THRESHOLD else HEALTHY


def multiple_exposures_summary(*, multiple: int, total: int) -> dict:
    """{count, share, status}: unhealthy when the share is ≥ 1 % with ≥ 10 units in all."""
    share = multiple / total if total else 0.0
    if total < MULTIPLE_MIN_UNITS:
        status = NOT_ENOUGH_TRAFFIC
    else:
        status = UNHEALTHY if share >= MULTIPLE_SHARE_THRESHOLD else HEALTHY
    return {"count": multiple, "share": share, "status": status}


def health_findings(
    *,
    exposures: Mapping[str, int] | None = None,
    multiple: int | None = None,
    srm_p_value: float | None = None,
    hours_since_launch: float | None = None,
    metric_count: int | None = None,
    flag_active: bool | None = None,
    variant_percentages: Mapping[str, float] | None = None,
    running: bool = True,
) -> list[dict]:
    """The findings that apply, most severe first; each `{code, severity, message}`."""
    findings: list[HealthFinding] = []
    if srm_p_value is not None and exposures and srm_status(exposures, srm_p_value) == UNHEALTHY:
        findings.append(
            HealthFinding(SAMPLE_RATIO_MISMATCH, WARNING, MESSAGES[SAMPLE_RATIO_MISMATCH].format(p=srm_p_value))
        )
    if multiple is not None and exposures is not None:
        summary = multiple_exposures_summary(multiple=multiple, total=sum(exposures.values()) + multiple)
        if summary["status"] == UNHEALTHY:
            findings.append(
                HealthFinding(MULTIPLE_EXPOSURES, WARNING, MESSAGES[MULTIPLE_EXPOSURES].format(share=summary["share"]))
            )
    if exposures is not None:
        total = sum(exposures.values())
        if total == 0 and hours_since_launch is not None and hours_since_launch >= ZERO_EXPOSURES_AFTER_HOURS:
            findings.append(HealthFinding(ZERO_EXPOSURES, CRITICAL, MESSAGES[ZERO_EXPOSURES]))
        elif total and min(exposures.values()) < MIN_EXPOSURES_PER_VARIANT:
            message = MESSAGES[TOO_FEW_EXPOSURES].format(minimum=MIN_EXPOSURES_PER_VARIANT)
            findings.append(HealthFinding(TOO_FEW_EXPOSURES, INFO, message))
    if metric_count == 0:
        findings.append(HealthFinding(NO_METRIC, WARNING, MESSAGES[NO_METRIC]))
    if running:
        findings.extend(_flag_findings(flag_active, variant_percentages))
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    return [asdict(finding) for finding in sorted(findings, key=lambda finding: order[finding.severity])]


def _flag_findings(
    flag_active: bool | None, variant_percentages: Mapping[str, float] | None
) -> Sequence[HealthFinding]:
    if flag_active is False or (variant_percentages is not None and not any(variant_percentages.values())):
        return [HealthFinding(FLAG_OFF_WHILE_RUNNING, WARNING, MESSAGES[FLAG_OFF_WHILE_RUNNING])]
    if variant_percentages:
        forced = [key for key, percentage in variant_percentages.items() if percentage >= 100]
        if forced:
            message = MESSAGES[VARIANT_FORCED_WHILE_RUNNING].format(variant=forced[0])
            return [HealthFinding(VARIANT_FORCED_WHILE_RUNNING, WARNING, message)]
    return []
