"""The endpoints PostHog's SDKs call: event capture and feature flag evaluation."""
