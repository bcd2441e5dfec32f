"""Benchmarks (``make bench`` runs ``python -m bench.run``).  See bench/results/README.md."""
