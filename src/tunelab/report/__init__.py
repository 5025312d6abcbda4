"""Reports: one self-contained HTML page per run (`html`), a comparison across runs
(`compare`), the search report (`search`), and the plots they share (`plots`).

Reads runs through `tunelab.runs.RunDir`. May import: training, runs and everything below;
never workflows, serve or cli.
"""
