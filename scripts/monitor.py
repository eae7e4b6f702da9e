"""`make monitor`: a Prometheus on 127.0.0.1 scraping the local stack (`make run`) with the chart's alerts.

Uses prometheus/prometheus.yml, which loads prometheus/rules.yml (generated from the chart's PrometheusRule
by `make rules`; a stale copy is reported). Data goes to a temporary directory removed on exit, unless
--data-dir names one to keep. Prints the URLs to open; Ctrl-C (or SIGTERM) stops Prometheus.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.procs import answers_200, is_port_free  # noqa: E402

CONFIG = ROOT / "prometheus" / "prometheus.yml"
RULES = ROOT / "prometheus" / "rules.yml"
HOST = "127.0.0.1"


def log(message: str) -> None:
    print(f"[monitor] {message}", flush=True)


def find_tool(name: str) -> str | None:
    local = ROOT / ".tools" / "bin" / name
    return str(local) if os.access(local, os.X_OK) else shutil.which(name)


def rules_stale() -> bool | None:
    """Whether prometheus/rules.yml differs from what the chart renders now (None: cannot tell)."""
    if find_tool("helm") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "rules.yml"
        result = subprocess.run(
            [str(ROOT / "scripts" / "render-rules.sh"), str(fresh)], capture_output=True, check=False
        )
        if result.returncode != 0:
            return None
        return fresh.read_text() != RULES.read_text()


def scraped(config: Path) -> str:
    """What the config scrapes, e.g. "clip-gateway localhost:8000, clip-image localhost:8001"."""
    import yaml

    jobs = yaml.safe_load(config.read_text()).get("scrape_configs", [])
    return ", ".join(
        f"{job['job_name']} {' '.join(t for s in job.get('static_configs', []) for t in s['targets'])}"
        for job in jobs
    )


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if answers_200(f"{url}/-/ready"):
            return True
        time.sleep(0.2)
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PROMETHEUS_PORT", "9090")), help="default 9090"
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="default prometheus/prometheus.yml")
    parser.add_argument("--data-dir", type=Path, help="TSDB directory to keep (default: temporary)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prometheus = find_tool("prometheus")
    if prometheus is None:
        log("prometheus not found in .tools/bin or PATH: run `make tools`")
        return 1
    if not is_port_free(args.port, HOST):
        log(
            f"port {args.port} on {HOST} is in use: pick another with PROMETHEUS_PORT=<port> (make) or --port"
        )
        return 1
    if args.config == CONFIG and rules_stale():
        log("warning: prometheus/rules.yml differs from the chart's PrometheusRule; run `make rules`")
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="clip-prometheus-"))
    url = f"http://{HOST}:{args.port}"
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={args.config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={HOST}:{args.port}",
            "--log.level=warn",
        ],
        start_new_session=True,  # Ctrl-C reaches us only; we stop Prometheus cleanly below
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also where the parent ignores Ctrl-C (a job started with `&`)
    try:
        if not wait_ready(proc, url, timeout=60):
            log(f"prometheus did not become ready (exit code {proc.poll()})")
            return 1
        log(f"Prometheus: {url}")
        log(f"alerts:     {url}/alerts")
        log(f"targets:    {url}/targets  ({scraped(args.config)}; start them with `make run`)")
        log("Ctrl-C stops it")
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if args.data_dir is None:
            shutil.rmtree(data, ignore_errors=True)
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
