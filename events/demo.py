"""Demo events for an experiment flag: exposures, page views and purchases of simulated users over several days."""

import random
import uuid
from datetime import timedelta

from django.utils import timezone

from events.services import events_ingest
from experiments_api.models import Project
from flags.evaluation import VARIANT_SALT, bucket_hash

DEMO_BATCH_SIZE = 1_000
BASE_CONVERSION_RATE = 0.10
# Each variant after the first converts this much more often (in absolute terms): a clear win on conversion.
CONVERSION_LIFT_PER_VARIANT = 0.05
# The control's mean purchase; other variants buy proportionally less per purchase, so revenue per user is flat.
MEAN_PURCHASE_AMOUNT = 40.0
# Every third user browses anonymously and logs in before buying, as posthog-js traffic does: the exposure and page
# views under an anonymous id, then `$identify`, then the purchase under the user's id.
IDENTIFIED_EVERY = 3


def demo_events_create(*, project: Project, flag_key: str, variants: list[str], days: int, users: int) -> int:
    """Create `$feature_flag_called` exposures, `$pageview`s and `purchase`s (with a numeric `amount`) for
    `users` simulated users first seen over the last `days` days; returns how many events were stored.

    Users are split evenly between `variants` with the flag's own variant hash, so the demo agrees with what
    the server answers for an evenly split flag (hashed on the id the exposure is sent with). Every third user is
    exposed under an anonymous id and identified before converting, so the results show conversions that cross a
    login. The draws depend on the flag key only, so every project's demo shows the same results (a clear win on
    conversion, a flat revenue per user), and running it again within a day (DEDUP_WINDOW) stores nothing new
    (uuids are unique per project).
    """
    if not variants or days < 1 or users < 1:
        return 0
    generator = random.Random(flag_key)
    end = timezone.now() - timedelta(minutes=5)
    events = []
    for number in range(users):
        distinct_id = f"demo-user-{number}"
        anonymous_id = f"demo-anon-{number}" if number % IDENTIFIED_EVERY == 0 else None
        variant_index = min(
            int(bucket_hash(flag_key, anonymous_id or distinct_id, salt=VARIANT_SALT) * len(variants)),
            len(variants) - 1,
        )
        first_seen = end - timedelta(seconds=generator.uniform(0, days * 86_400))
        conversion_rate = BASE_CONVERSION_RATE + CONVERSION_LIFT_PER_VARIANT * variant_index
        events += _user_events(
            generator,
            flag_key=flag_key,
            variant=variants[variant_index],
            distinct_id=distinct_id,
            anonymous_id=anonymous_id,
            first_seen=first_seen,
            end=end,
            conversion_rate=conversion_rate,
            mean_amount=MEAN_PURCHASE_AMOUNT * BASE_CONVERSION_RATE / conversion_rate,
        )
    stored = 0
    for start in range(0, len(events), DEMO_BATCH_SIZE):
        stored += events_ingest(project=project, events=events[start : start + DEMO_BATCH_SIZE]).stored
    return stored


def _user_events(
    generator: random.Random,
    *,
    flag_key: str,
    variant: str,
    distinct_id: str,
    anonymous_id: str | None,
    first_seen,
    end,
    conversion_rate: float,
    mean_amount: float,
) -> list[dict]:
    browsing_id = anonymous_id or distinct_id
    flag_properties = {"$feature_flag": flag_key, "$feature_flag_response": variant, f"$feature/{flag_key}": variant}
    events = [_event(generator, "$feature_flag_called", browsing_id, first_seen, flag_properties)]
    moment = first_seen
    for _ in range(generator.randint(1, 5)):
        moment = min(moment + timedelta(minutes=generator.uniform(1, 240)), end)
        events.append(
            _event(generator, "$pageview", browsing_id, moment, {f"$feature/{flag_key}": variant, "$current_url": "/"})
        )
    if generator.random() < conversion_rate:
        moment = min(moment + timedelta(minutes=generator.uniform(1, 60)), end)
        if anonymous_id is not None:
            login = {"$anon_distinct_id": anonymous_id, "$set": {"email": f"{distinct_id}@example.com"}}
            events.append(_event(generator, "$identify", distinct_id, moment, login))
        amount = round(generator.expovariate(1 / mean_amount), 2)
        events.append(
            _event(generator, "purchase", distinct_id, moment, {f"$feature/{flag_key}": variant, "amount": amount})
        )
    return events


def _event(generator: random.Random, name: str, distinct_id: str, timestamp, properties: dict) -> dict:
    return {
        "uuid": str(uuid.UUID(int=generator.getrandbits(128), version=4)),
        "event": name,
        "distinct_id": distinct_id,
        "timestamp": timestamp.isoformat(),
        "properties": properties,
    }
