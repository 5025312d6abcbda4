"""Evaluation: what every run reports about how good it is.

Owns: classification metrics and bootstrap confidence intervals (`metrics`), baselines
(majority, TF-IDF + logistic regression) and the comparison with them (`baselines`), error
analysis, text metrics for generation (ROUGE, BLEU, chrF), and forgetting (perplexity on general
text before and after). May import: methods, data, models, config and the base modules; it
never imports a task (tasks use it).
"""
