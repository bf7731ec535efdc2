"""The JSON the experiment page's script reads: chart series and what the recalculate button needs."""

from django.urls import reverse

from .selectors import ExperimentResults, MetricResults


def _interval_chart(metric: MetricResults) -> dict | None:
    latest = metric.latest
    if latest is None:
        return None
    variants = [variant for variant in latest.variants if variant.interval is not None]
    if not variants:
        return None
    return {
        "labels": [variant.key for variant in variants],
        "ranges": [list(variant.interval) for variant in variants],
        "deltas": [variant.delta for variant in variants],
        "verdicts": [variant.verdict for variant in variants],
    }


def _cumulative_chart(metric: MetricResults) -> dict | None:
    """Per test variant and day, the cumulative delta and its interval (null on days without an interval)."""
    if not metric.daily:
        return None
    keys = list(dict.fromkeys(variant.key for day in metric.daily for variant in day.variants))
    series = []
    for key in keys:
        points = [next((v for v in day.variants if v.key == key), None) for day in metric.daily]
        series.append(
            {
                "variant": key,
                "delta": [point.delta if point else None for point in points],
                "low": [point.interval[0] if point and point.interval else None for point in points],
                "high": [point.interval[1] if point and point.interval else None for point in points],
            }
        )
    return {"labels": [day.day for day in metric.daily], "series": series}


def _exposure_chart(results: ExperimentResults) -> dict | None:
    if not results.exposures or not results.exposures["timeseries"]:
        return None
    timeseries = results.exposures["timeseries"]
    return {
        "labels": timeseries[0]["days"],
        "series": [{"variant": series["variant"], "counts": series["exposure_counts"]} for series in timeseries],
    }


def page_data(results: ExperimentResults) -> dict:
    experiment = results.experiment
    api_kwargs = {"project_id": experiment.project_id, "pk": experiment.pk}
    return {
        "relative": results.relative,
        "exposures": _exposure_chart(results),
        "metrics": [
            {
                "uuid": metric.uuid,
                "name": metric.name,
                "metric": metric.metric,
                "fingerprint": metric.fingerprint,
                "percent": results.relative or metric.is_proportion,
                "recalculating": metric.recalculating,
                "interval": _interval_chart(metric),
                "cumulative": _cumulative_chart(metric),
            }
            for metric in results.metrics
        ],
        "metrics_recalculation_id": results.metrics_recalculation_id,
        "urls": {
            "recalculate_timeseries": reverse("project_experiments-recalculate-timeseries", kwargs=api_kwargs),
            "timeseries_results": reverse("project_experiments-timeseries-results", kwargs=api_kwargs),
            "metrics_recalculation": reverse("project_experiments-metrics-recalculation", kwargs=api_kwargs),
        },
    }
