"""Serializers of the experiments API: request validation and response shapes, no business rules."""
