"""Benchmarks (`python -m bench`, `make bench`): numbers against baselines measured in the same run."""
