"""`make bench`: the real stack against the in-process limit and the batching-off design, in one run.

    python -m bench                 # demo model and ViT-B-32 (random weights)
    python -m bench --quick         # demo model, short points
    python -m bench --device cuda   # on a GPU machine (fp16 by the predictors' default)

The limit is the best in-process path over every engine and kernel choice (`bench.inprocess`); the
default choice is measured beside it and against each forced choice (`bench.choices`), and int8
against fp32. The two ratios at the top concurrency (service / limit, batching on / off) are medians of
--rounds rounds, each the limit, then batching on, then off, back to back: the shared machine drifts.
Every run records the machine (`bench.machine`) and where a `/compare/`'s CPU goes (`bench.breakdown`).
Writes bench/results/<name>.json, .md and .png (throughput and p95 latency against concurrency);
`make docs` turns the newest full run into the README's table (`bench.readme`).
"""
