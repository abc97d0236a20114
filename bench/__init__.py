"""Benchmarks for psy-annotator: start time of `serve`, page throughput and memory.

Run with `python -m bench.run [--quick] [--only start|pages]`; see bench/README.md.
"""
