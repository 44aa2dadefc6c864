"""Scoring runs: the distribution metrics, one run's evaluation, the spread over seeds, the report."""
