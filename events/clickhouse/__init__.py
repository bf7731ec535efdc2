"""The optional ClickHouse event store (`EVENT_STORE_URL`): events, and copies of persons, distinct ids and person
overrides, in PostHog's ClickHouse layout, reached through clickhouse-connect or the embedded chDB with one SQL."""
