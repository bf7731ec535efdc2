"""Per-bucket increments of the per-variant sums, so one scan yields the cumulative result at every boundary.

A metric supplies `change_rows(unit, variant, exit_bucket, bucket, ...)`: the buckets where a unit's state may
change. Window functions over each unit's rows (ordered by bucket) give its state, then its contribution to each
sum (zero outside [exp_bucket, exit_bucket)) and the change of that contribution since its previous row — for a sum
of squares, the change of the squared running value. Summed per (variant, bucket) and accumulated over buckets in
Python, these give exactly the sums a separate query per boundary would give. Contributions that hold from a unit's
exposure on (its count, CUPED covariates) come straight from the exposures.
"""

from dataclasses import dataclass, field

from .query import FLOAT, MULTIPLE_VARIANT_KEY, Query, QueryContext, run

# The default RANGE frame: rows of one unit in the same bucket (peers) all see the state at the end of that bucket,
# so the differences below telescope correctly whatever order the peers come in.
UNIT_WINDOW = "(PARTITION BY unit ORDER BY bucket)"


@dataclass
class Increments:
    """What a metric adds to the query: change rows (a CTE already added), the running window expressions
    over them, contributions computed from those (SQL over the running columns and `covariate`), and
    contributions constant from exposure on (SQL over `exposures` columns and `covariate`)."""

    running: dict[str, str]
    contributions: dict[str, str]
    constants: dict[str, str] = field(default_factory=dict)
    covariates: str | None = None  # a CTE (unit, *covariate_columns), when CUPED is on
    covariate_columns: tuple[str, ...] = ("covariate",)


def exit_rows(ctx: QueryContext, columns: list[str]) -> str:
    """A row at the bucket where a unit leaves, so its contributions drop to zero there."""
    nulls = "".join(f", NULL AS {column}" for column in columns)
    never = ctx.params(ctx.bucket_count)
    return (
        f"SELECT unit, variant, exit_bucket, exit_bucket AS bucket{nulls} FROM exposures "
        f"WHERE exp_bucket < exit_bucket AND exit_bucket < {never}"
    )


def _masked(expression: str) -> str:
    return f"(CASE WHEN bucket < exit_bucket THEN {expression} ELSE 0 END)"


def _covariate_join(increments: Increments, alias: str) -> str:
    if increments.covariates is None:
        return ""
    return f" LEFT JOIN {increments.covariates} c ON c.unit = {alias}.unit"


def _covariate_column(increments: Increments) -> str:
    if increments.covariates is None:
        return ""
    return "".join(f", COALESCE(c.{column}, 0) AS {column}" for column in increments.covariate_columns)


def add_increment_ctes(query: Query, ctx: QueryContext, increments: Increments, outputs: list[str]) -> str:
    """Adds `unit_states` and `increments`; returns the SELECT of (variant, bucket, *outputs) increment rows."""
    running = ", ".join(f"{sql} AS {name}" for name, sql in increments.running.items())
    query.add(
        "unit_states",
        f"SELECT unit, variant, exit_bucket, bucket, {running} FROM change_rows WINDOW w AS {UNIT_WINDOW}",
    )
    masked = ", ".join(f"{_masked(sql)} AS {name}" for name, sql in increments.contributions.items())
    differences = ", ".join(f"{name} - LAG({name}, 1, 0) OVER w AS {name}" for name in increments.contributions)
    query.add(
        "increments",
        f"SELECT variant, bucket, {differences}\nFROM (SELECT s.unit, s.variant, s.bucket, {masked}\n"
        f"  FROM (SELECT unit_states.*{_covariate_column(increments)} FROM unit_states"
        f"{_covariate_join(increments, 'unit_states')}) s) contributions\n"
        f"WINDOW w AS {UNIT_WINDOW}",
    )
    selects = [
        "SELECT variant, bucket, "
        + ", ".join(
            f"CAST(SUM({name}) AS {FLOAT}) AS {name}" if name in increments.contributions else f"0 AS {name}"
            for name in outputs
        )
        + " FROM increments GROUP BY variant, bucket"
    ]
    if increments.constants:
        never = ctx.params(ctx.bucket_count)
        covariate_join = _covariate_join(increments, "exposures")
        source = f"(SELECT exposures.*{_covariate_column(increments)} FROM exposures{covariate_join}) x"
        for sign, bucket, condition in (
            ("", "exp_bucket", "exp_bucket < exit_bucket"),
            ("-", "exit_bucket", f"exp_bucket < exit_bucket AND exit_bucket < {never}"),
        ):
            constants = ", ".join(
                f"{sign}CAST(SUM({increments.constants[name]}) AS {FLOAT}) AS {name}"
                if name in increments.constants
                else f"0 AS {name}"
                for name in outputs
            )
            selects.append(
                f"SELECT variant, {bucket} AS bucket, {constants} FROM {source} WHERE {condition} "
                f"GROUP BY variant, {bucket}"
            )
    return "\nUNION ALL\n".join(selects)


def accumulate(rows: list[tuple], ctx: QueryContext, outputs: list[str], *, increments: bool) -> list[dict]:
    """Per bucket, {variant: {output: value}} as of that bucket's boundary, every variant present (with
    breakdowns, the (variant, segment) keys that have rows).

    With `increments` each (variant, bucket, *values) row adds to the totals of its bucket and every later one;
    otherwise each row already holds the values as of its bucket.
    """

    def empty() -> dict:
        return {variant: dict.fromkeys(outputs, 0.0) for variant in ([] if ctx.breakdowns else ctx.exposure.variants)}

    totals = empty()
    by_bucket: dict[int, list[tuple]] = {}
    for row in rows:
        by_bucket.setdefault(row[1], []).append(row)
    result = []
    for bucket in range(ctx.bucket_count):
        if not increments:
            totals = empty()
        for variant, _bucket, *values in by_bucket.get(bucket, []):
            sums = totals.setdefault(variant, dict.fromkeys(outputs, 0.0))
            for name, value in zip(outputs, values, strict=True):
                sums[name] += float(value or 0)
        result.append({variant: dict(sums) for variant, sums in totals.items()})
    return result


def _multiple_rows(ctx: QueryContext, outputs: list[str]) -> str:
    """Increment rows of the `$multiple` arm: its `exposures` are the units leaving for a second variant, by the
    bucket of their first exposure (as daily_exposures counts them)."""
    never = ctx.params(ctx.bucket_count)
    values = ", ".join(
        f"CAST(COUNT(*) AS {FLOAT}) AS {name}" if name == "exposures" else f"0 AS {name}" for name in outputs
    )
    return (
        f"SELECT {ctx.params(MULTIPLE_VARIANT_KEY)} AS variant, exp_bucket AS bucket, {values} FROM exposures "
        f"WHERE exit_bucket < {never} GROUP BY exp_bucket"
    )


def run_increments(query: Query, ctx: QueryContext, increments: Increments, outputs: list[str]) -> list[dict]:
    """Every metric also reports `exposures`: the units in the analysis, whether or not they have a value. With
    `ctx.count_multiple` every bucket also holds the `$multiple` arm (only its `exposures` count)."""
    increments.constants["exposures"] = "1"
    outputs = [*outputs, "exposures"]
    select = add_increment_ctes(query, ctx, increments, outputs)
    if ctx.count_multiple:
        select += "\nUNION ALL\n" + _multiple_rows(ctx, outputs)
    per_bucket = accumulate(run(query, ctx, select), ctx, outputs, increments=True)
    if ctx.count_multiple:
        for sums in per_bucket:
            sums.setdefault(MULTIPLE_VARIANT_KEY, dict.fromkeys(outputs, 0.0))
    return per_bucket
