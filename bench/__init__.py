"""`make bench`: the real stack against the in-process limit and the batching-off design, in one run.

    python -m bench                 # demo model and ViT-B-32 (random weights), ~12-15 min on 2 cores
    python -m bench --quick         # demo model, short points, under two minutes
    python -m bench --device cuda   # on a GPU machine (fp16 by the predictors' default)

The two ratios at the top concurrency (service / limit, batching on / off) are medians of --rounds
rounds, each the limit, then batching on, then off, back to back: the shared machine drifts.
Writes bench/results/<name>.json, .md and .png (throughput and p95 latency against concurrency).
"""
