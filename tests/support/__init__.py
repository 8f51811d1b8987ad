"""Helpers shared by the test suites (private servers, waiting on conditions)."""
