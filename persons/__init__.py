"""Persons and identity: who a distinct id belongs to, their properties, merges and the overrides they leave."""
