"""Local calendar days of a project and the UTC instants where they end."""

import datetime as dt
from zoneinfo import ZoneInfo


def local_day(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def day_end(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The next local midnight after `day`, in UTC: the exclusive `query_to` of that day's cumulative result."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)


def days_from(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)]


def midnights_between(after: dt.datetime, before: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    """Local midnights strictly between the two instants, in UTC."""
    midnights = []
    day = local_day(after, tz)
    while (midnight := day_end(day, tz)) < before:
        midnights.append(midnight)
        day += dt.timedelta(days=1)
    return midnights
