"""Benchmarks (``catalyst-sim bench ...``): speed targets live here, as JSON with same-run ratios.

Tests never assert timings (the machines they run on are shared and noisy); a benchmark reports
absolute rates next to ratios measured in the same run, which survive that noise far better.
"""
