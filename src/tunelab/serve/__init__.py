"""`tunelab serve`: a finished run (or export) behind HTTP.

Classification runs answer `POST /v1/predict`; seq2seq and instruction-tuned causal_lm runs answer
the OpenAI-style `POST /v1/completions` and `POST /v1/chat/completions` (streaming included), so
the `openai` client works against them. Concurrent requests share model calls (`batching`);
`/metrics` exposes Prometheus counters; an optional API key guards everything but `/health`.

Loads runs through `tunelab.runs` and asks `tunelab.tasks` what a run answers with. May import
every layer below cli (it uses no workflow); only cli imports it.
"""

from __future__ import annotations

from tunelab.serve.app import create_app

__all__ = ["create_app"]
