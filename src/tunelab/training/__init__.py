"""Training: the HF Trainer, configured from RunConfig, plus tunelab's callbacks."""
