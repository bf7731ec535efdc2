"""Person services: batch ingestion (identify, alias, merges, property updates), the squash job, API writes."""
