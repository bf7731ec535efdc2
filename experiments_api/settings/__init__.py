"""Settings package: `base` for running the server, `test` for the test suite."""
