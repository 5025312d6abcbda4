"""Run reports: one self-contained HTML page per run, and a comparison across runs."""
