"""The Grafana dashboard as code: `clip-similarity.json` beside this file is generated from it.

Built with Grafana's own `grafana-foundation-sdk` (pinned in the dev extra). Run
`python helm/clip-similarity/dashboards/dashboard.py` (or `make dashboard`) after changing a panel;
`--check` exits 1 when the committed JSON differs from what this file builds (the tests run it too).
Every query filters by the `$namespace` and `$job` variables and uses `$__rate_interval`; metric names
are the ones docs/metrics.md lists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as models
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUT = Path(__file__).with_name("clip-similarity.json")
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
JOBS = "clip-gateway|clip-image|clip-text"
API = 'handler=~"/compare/|/embed/|/embed_text/|/v1/embeddings"'
DCGM_NOTE = (
    "From NVIDIA DCGM exporter; pod labels are exported_* when its ServiceMonitor has honorLabels false "
    "(GPU Operator default), plain otherwise: both are matched."
)


def sel(metric: str, *extra: str) -> str:
    """`metric{namespace=~"$namespace", job=~"$job", extra...}`: the selector every panel query uses."""
    return metric + "{" + ", ".join(['namespace=~"$namespace"', 'job=~"$job"', *extra]) + "}"


def rate(metric: str, *extra: str) -> str:
    return f"rate({sel(metric, *extra)}[$__rate_interval])"


def quantiles(
    metric: str, by: str, qs: tuple[str, ...], legend: str = "", *extra: str
) -> list[tuple[str, str]]:
    """(expr, legend) of `histogram_quantile(q, sum by (by, le) (rate(metric_bucket...)))` for each q."""
    group = f"{by}, le" if by else "le"
    suffix = f" {legend}" if legend else ""
    buckets = rate(metric + "_bucket", *extra)
    return [(f"histogram_quantile({q}, sum by ({group}) ({buckets}))", f"p{q[2:]:0<2}{suffix}") for q in qs]


P3 = ("0.5", "0.95", "0.99")


class Ids:
    """Consecutive panel ids in the order panels are added."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last += 1
        return self.last


ids = Ids()


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title).id(ids.next())


def panel(
    title: str,
    description: str,
    unit: str,
    targets: list[tuple[str, str]],
    width: int,
    *,
    stacked: bool = False,
    min_max: tuple[float, float] | None = None,
) -> timeseries.Panel:
    """A time series panel: `targets` are (PromQL, legend) pairs, refIds A, B, C... in that order."""
    p = (
        timeseries.Panel()
        .id(ids.next())
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .fill_opacity(10)
        .show_points(models.VisibilityMode.NEVER)
        .legend(
            common.VizLegendOptions()
            .display_mode(models.LegendDisplayMode.LIST)
            .placement(models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions().mode(models.TooltipDisplayMode.MULTI).sort(models.SortOrder.DESCENDING)
        )
        .height(8)
        .span(width)
    )
    if stacked:
        p = p.stacking(common.StackingConfig().mode(models.StackingMode.NORMAL))
    if min_max is not None:
        p = p.min(min_max[0]).max(min_max[1])
    for i, (expr, legend) in enumerate(targets):
        p = p.with_target(
            prometheus.Dataquery().datasource(DS).ref_id(chr(ord("A") + i)).expr(expr).legend_format(legend)
        )
    return p


def variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    """A multi-value query variable over the three jobs' `up` series, "All" selected by default."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query({"query": query, "refId": f"{name}-var"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def gpu(title: str, description: str, unit: str, metric: str, **kw: Any) -> timeseries.Panel:
    expr = " or ".join(
        f'max by (Hostname, gpu) ({metric}{{{ns}=~"$namespace", {c}="kserve-container"}})'
        for ns, c in (("exported_namespace", "exported_container"), ("namespace", "container"))
    )
    return panel(title, f"{description} {DCGM_NOTE}", unit, [(expr, "{{Hostname}} GPU {{gpu}}")], 6, **kw)


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    ids.last = 0
    requests = rate("http_requests_total", API)
    five_xx = rate("http_requests_total", API, 'http_status=~"5.."')
    hits = f"sum({rate('gateway_text_cache_hits_total')})"
    misses = f"sum({rate('gateway_text_cache_misses_total')})"
    builder = (
        dashboard.Dashboard("CLIP similarity")
        .uid("clip-similarity")
        .tags(["clip", "kserve", "inference"])
        .description(
            "Gateway and KServe predictors of clip-similarity: traffic, latency, errors, batching, resources."
        )
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(variable("namespace", "Namespace", f'label_values(up{{job=~"{JOBS}"}}, namespace)'))
        .with_variable(
            variable("job", "Job", f'label_values(up{{namespace=~"$namespace", job=~"{JOBS}"}}, job)')
        )
        # Gateway
        .with_row(row("Gateway"))
        .with_panel(
            panel(
                "Requests by status",
                "Answers per second of /compare/, /embed/ and /embed_text/, by HTTP status code "
                "(probes and scrapes left out).",
                "reqps",
                [(f"sum by (http_status) ({requests})", "{{http_status}}")],
                8,
                stacked=True,
            )
        )
        .with_panel(
            panel(
                "Gateway latency",
                "p50 / p95 / p99 time to answer /compare/, /embed/ and /embed_text/.",
                "s",
                quantiles("http_request_duration_seconds", "", P3, "", API),
                8,
            )
        )
        .with_panel(
            panel(
                "5xx ratio",
                "Share of API requests answered 5xx (502 predictor error, 503 unreachable, 504 timeout): "
                "0 while none fail, empty only without traffic.",
                "percentunit",
                [(f"(sum({five_xx}) or vector(0)) / sum({requests})", "5xx ratio")],
                8,
                min_max=(0, 1),
            )
        )
        .with_panel(
            panel(
                "Predictor calls seen by the gateway",
                "p50 / p95 / p99 of one predictor call from the gateway, retry included.",
                "s",
                quantiles("predictor_request_duration_seconds", "predictor", P3, "{{predictor}}"),
                12,
            )
        )
        .with_panel(
            panel(
                "Predictor errors by reason",
                "Failed predictor calls per second, as the gateway saw them.",
                "reqps",
                [
                    (
                        f"sum by (predictor, reason) ({rate('predictor_errors_total')})",
                        "{{predictor}} {{reason}}",
                    )
                ],
                12,
                stacked=True,
            )
        )
        .with_panel(
            panel(
                "Gateway concurrency rejections",
                "Requests the gateway refused at once with 503 + Retry-After because "
                "gateway.maxConcurrency (GATEWAY_MAX_CONCURRENCY) requests were in flight in a pod: "
                "0 while none are refused.",
                "reqps",
                [(f"sum({rate('gateway_rejected_requests_total')}) or vector(0)", "rejected")],
                8,
            )
        )
        .with_panel(
            panel(
                "Text cache hit ratio",
                "Share of /compare/ texts whose embedding came from the gateway's cache (repeated captions, "
                "zero-shot labels) instead of the text predictor: empty only without /compare/ traffic.",
                "percentunit",
                [(f"{hits} / ({hits} + {misses})", "hit ratio")],
                8,
                min_max=(0, 1),
            )
        )
        .with_panel(
            panel(
                "Text cache entries",
                "Text embeddings held in each gateway pod's cache (at most gateway.textCacheSize).",
                "short",
                [(f"sum by (pod) ({sel('gateway_text_cache_entries')})", "{{pod}}")],
                8,
            )
        )
        # Predictors
        .with_row(row("Predictors"))
        .with_panel(
            panel(
                "Predictor latency (KServe predict)",
                "p50 / p95 / p99 of KServe's predict step, per model (queue + forward pass).",
                "s",
                quantiles("request_predict_seconds", "model_name", P3, "{{model_name}}"),
                8,
            )
        )
        .with_panel(
            panel(
                "Batch size",
                "Items per forward pass: mean and p95. Near max_batch_size means batching is saturated.",
                "short",
                [
                    (
                        f"sum by (model_name) ({rate('clip_batch_size_sum')}) / "
                        f"sum by (model_name) ({rate('clip_batch_size_count')})",
                        "mean {{model_name}}",
                    ),
                    *quantiles("clip_batch_size", "model_name", ("0.95",), "{{model_name}}"),
                ],
                8,
            )
        )
        .with_panel(
            panel(
                "Queue time",
                "p50 / p95 time an item waits for its batch (alert: ClipPredictorQueueSaturated).",
                "s",
                quantiles("clip_queue_seconds", "model_name", ("0.5", "0.95"), "{{model_name}}"),
                8,
            )
        )
        .with_panel(
            panel(
                "Inference time",
                "p50 / p95 / p99 of one forward pass.",
                "s",
                quantiles("clip_inference_seconds", "model_name", P3, "{{model_name}}"),
                12,
            )
        )
        .with_panel(
            panel(
                "Inference errors by reason",
                "Failed requests or forward passes per second in the predictors.",
                "reqps",
                [
                    (
                        f"sum by (model_name, reason) ({rate('clip_inference_errors_total')})",
                        "{{model_name}} {{reason}}",
                    )
                ],
                12,
                stacked=True,
            )
        )
        .with_panel(
            panel(
                "Predictor overload rejections",
                "Requests a predictor refused at once with 503 + Retry-After because its pod held "
                "maxQueueItems items (ClipPredictorOverloaded): 0 while none are refused.",
                "reqps",
                [(f"sum by (model_name) ({rate('clip_rejected_requests_total')})", "{{model_name}}")],
                12,
                stacked=True,
            )
        )
        .with_panel(
            panel(
                "Queued items",
                "Items admitted and not yet answered (decoding, waiting for a batch, in a forward pass): "
                "all pods, and the fullest pod, which refuses requests past predictors.*.maxQueueItems.",
                "short",
                [
                    (f"sum by (model_name) ({sel('clip_queued_items')})", "{{model_name}} all pods"),
                    (f"max by (model_name) ({sel('clip_queued_items')})", "{{model_name}} fullest pod"),
                ],
                12,
            )
        )
        # Resources
        .with_row(row("Resources"))
        .with_panel(
            panel(
                "Process CPU",
                "CPU cores used by each process.",
                "short",
                [(f"sum by (job, pod) ({rate('process_cpu_seconds_total')})", "{{job}} {{pod}}")],
                6,
            )
        )
        .with_panel(
            panel(
                "Process memory",
                "Resident memory of each process.",
                "bytes",
                [(f"sum by (job, pod) ({sel('process_resident_memory_bytes')})", "{{job}} {{pod}}")],
                6,
            )
        )
        .with_panel(
            gpu(
                "GPU utilisation",
                "GPU busy percent of the GPUs the predictors hold.",
                "percent",
                "DCGM_FI_DEV_GPU_UTIL",
                min_max=(0, 100),
            )
        )
        .with_panel(
            gpu(
                "GPU memory used",
                "Framebuffer memory used (MiB) on the GPUs the predictors hold.",
                "decmbytes",
                "DCGM_FI_DEV_FB_USED",
            )
        )
    )
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return model


def render() -> str:
    """The committed file's text: the model as indented JSON with a final newline."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run `make dashboard`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
