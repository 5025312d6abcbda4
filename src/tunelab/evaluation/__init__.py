"""Metrics and baselines that every run reports."""
