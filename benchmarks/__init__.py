"""Benchmarks: ``make bench`` (``python -m benchmarks``) prints figures, never asserts them."""
