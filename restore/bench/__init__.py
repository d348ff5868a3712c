"""Benchmarks: quality and speed next to classical baselines, on the same inputs in the same process."""
