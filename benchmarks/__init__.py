"""Benchmarks: `make bench` runs `python -m benchmarks.run`; each module can also run on its own."""
