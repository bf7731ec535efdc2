"""How the results pages write numbers: one function per kind of number, shared by templates, CSV and tests."""

P_VALUE_FLOOR = 0.001


def value_text(value: float | None, *, proportion: bool) -> str:
    """A conversion rate as a percentage, a mean with two decimals; an em dash when undefined."""
    if value is None:
        return "—"
    return f"{value:.1%}" if proportion else f"{value:,.2f}"


def delta_text(delta: float | None, *, relative: bool, proportion: bool) -> str:
    """A relative effect in percent, an absolute one in percentage points (proportions) or units, always signed."""
    if delta is None:
        return "—"
    if relative:
        return f"{delta:+.1%}"
    if proportion:
        return f"{delta * 100:+.1f} pp"
    return f"{delta:+,.2f}"


def interval_text(interval: tuple[float | None, float | None] | None, *, relative: bool, proportion: bool) -> str:
    """ "low to high"; a one-sided interval's open end (None) reads "or more" / "or less"."""
    if interval is None or interval == (None, None):
        return "—"
    low, high = (
        None if bound is None else delta_text(bound, relative=relative, proportion=proportion) for bound in interval
    )
    if high is None:
        return f"{low} or more"
    if low is None:
        return f"{high} or less"
    return f"{low} to {high}"


def chance_text(chance: float | None) -> str:
    return "—" if chance is None else f"{chance:.1%}"


def p_value_text(p_value: float | None) -> str:
    if p_value is None:
        return "—"
    return f"< {P_VALUE_FLOOR}" if p_value < P_VALUE_FLOOR else f"{p_value:.3f}"
