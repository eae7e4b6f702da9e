"""The settings of the reliability tests' two real stacks, and how they are started."""

from __future__ import annotations

from pathlib import Path

from .stack import LocalStack, plan_stack, start_stack

API_KEY = "reliability-key-0123456789"  # GATEWAY_API_KEYS of the stack as deployed
TIMEOUT_S = 2.0  # PREDICTOR_TIMEOUT_S of the tight stack
QUEUE = 8  # --max_queue_items (and --max_items) of its predictors
CONCURRENCY = 16  # GATEWAY_MAX_CONCURRENCY of its gateway


def started(
    model_dir: Path, logs: Path, predictor_args: tuple[str, ...] = (), **gateway_env: str
) -> LocalStack:
    """The three programs, predictors with extra flags, the gateway with extra environment."""
    stack = plan_stack(model_dir, logs)
    for job in ("clip-image", "clip-text"):
        stack.servers[job].argv = [*stack.servers[job].argv, *predictor_args]
    stack.servers["clip-gateway"].env.update(gateway_env)
    return start_stack(stack)
