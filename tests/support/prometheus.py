"""A real Prometheus on 127.0.0.1 over the local scrape config, and the parts of its API tests use."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from devtools.procs import ROOT, Program, pick_free_port

LOCAL_CONFIG = ROOT / "prometheus" / "prometheus.yml"
T = TypeVar("T")


def local_config(ports: Mapping[str, int], rules: Path, interval: str = "1s") -> dict[str, Any]:
    """prometheus/prometheus.yml as shipped, with each job's target moved to 127.0.0.1:<its port>,
    scrape and rule evaluation every `interval`, and `rules` as the only rule file."""
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["rule_files"] = [str(rules)]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(ports), f"prometheus.yml jobs {sorted(jobs)} != {sorted(ports)}"
    for name, job in jobs.items():
        (static,) = job["static_configs"]
        static["targets"] = [f"127.0.0.1:{ports[name]}"]
    return config


@dataclass
class Prometheus:
    server: Program
    url: str

    def api(self, path: str, **params: Any) -> Any:
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of `expr` now."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), as /api/v1/alerts lists them."""
        return list(self.api("alerts")["alerts"])

    def targets(self) -> dict[str, str]:
        """job -> health of its target ("up", "down", "unknown"), with the last scrape error if any."""
        active = self.api("targets", state="active")["activeTargets"]
        return {
            t["labels"]["job"]: t["health"] + (f" ({t['lastError']})" if t["lastError"] else "")
            for t in active
        }


def start_prometheus(binary: str, config: dict[str, Any], workdir: Path, timeout: float = 60.0) -> Prometheus:
    """Prometheus on a free 127.0.0.1 port with `config`, its data and log under `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = pick_free_port()
    server = Program(
        "prometheus",
        [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        ready_url=f"http://127.0.0.1:{port}/-/ready",
        log_path=workdir / "prometheus.log",
    ).start(timeout)
    return Prometheus(server, f"http://127.0.0.1:{port}")


def poll(
    probe: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Call `probe` until `done(result)` or `timeout` seconds pass; fail naming `what` and the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f}s, still not {what}; last seen: {result!r}")
        time.sleep(interval)
