"""docs/ and the README's Layout say what the code does: generated sections equal a fresh build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "scripts")]

import gen_docs  # noqa: E402
from docgen import config, layout  # noqa: E402
from docgen.common import DocsError  # noqa: E402

from tests.support.tiers import process_fixture  # noqa: E402

CODE_FOLDERS = ("predictors", "gateway", "devtools", "bench", "demo", "scripts")


def section(text: str, name: str) -> str:
    match = re.search(rf"<!-- BEGIN generated: {name} -->\n(.*?)<!-- END generated -->", text, re.DOTALL)
    assert match, f"no generated section {name}"
    return match[1]


@pytest.mark.usefixtures("starts_processes")
def test_generated_sections_equal_a_fresh_build_from_the_code() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@process_fixture(scope="module")  # the alerts section renders the chart with helm
def built() -> dict[str, str]:
    return gen_docs.build_all()


def test_a_stale_table_is_rewritten(built: dict[str, str]) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    stale = text.replace("`CLIP_MAX_BATCH_SIZE` | `32`", "`CLIP_MAX_BATCH_SIZE` | `16`")
    assert stale != text
    assert gen_docs.regenerate(stale, built, "configuration.md") == text


def test_an_unknown_or_unclosed_section_is_an_error(built: dict[str, str]) -> None:
    with pytest.raises(DocsError, match="unknown generated section 'nope'"):
        gen_docs.regenerate("<!-- BEGIN generated: nope -->\n<!-- END generated -->\n", built, "x.md")
    with pytest.raises(DocsError, match="without its END"):
        gen_docs.regenerate("<!-- BEGIN generated: layout -->\n", built, "x.md")


def test_every_flag_and_gateway_variable_is_in_configuration_md() -> None:
    from gateway.settings import Settings
    from predictors.settings import build_parser

    text = (ROOT / "docs" / "configuration.md").read_text()
    flags = {o for a in build_parser("image")._actions for o in a.option_strings if o.startswith("--")}
    assert {"--max_queue_items", "--shutdown_grace_s", "--http_port"} <= flags
    for flag in flags - {"--help"}:
        assert f"`{flag}`" in text, flag
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in section(text, "gateway-env"), name
    assert "`CLIP_MAX_QUEUE_ITEMS`" in section(text, "predictor-flags")


def test_every_alert_of_the_chart_is_in_metrics_md() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text()
    rules = (ROOT / "prometheus" / "rules.yml").read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert alerts
    for alert in alerts:
        assert f"[{alert}]" in section(text, "alerts"), alert


def test_the_readme_layout_names_every_module() -> None:
    listed = section((ROOT / "README.md").read_text(), "layout")
    modules = [
        p for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts
    ]
    assert len(modules) > 50
    for path in modules:
        folder, rel = (
            path.relative_to(ROOT).parts[0],
            path.relative_to(ROOT / path.relative_to(ROOT).parts[0]),
        )
        block = listed.split(f"- **`{folder}/`**", 1)[1].split("\n- **", 1)[0]
        assert f"  - `{rel.as_posix()}`: " in block, (
            f"{path.relative_to(ROOT)} is missing from README's Layout"
        )


def test_code_that_moved_is_a_clear_error(monkeypatch: Any) -> None:
    import predictors.settings

    monkeypatch.delattr(predictors.settings, "build_parser")
    with pytest.raises(DocsError, match=r"predictors\.settings\.build_parser"):
        config.predictor_flags()


def test_a_module_without_docstring_is_a_clear_error(tmp_path: Path) -> None:
    module = tmp_path / "bare.py"
    module.write_text("x = 1\n")
    with pytest.raises(DocsError, match=r"bare\.py has no docstring"):
        layout.summary(module)
