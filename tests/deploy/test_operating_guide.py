"""docs/operating.md: its Alertmanager configuration passes the real Alertmanager's own
parser (`amtool check-config`, Debian's prometheus-alertmanager), names the chart's Service
and the bot's endpoint, and the guide's links and inline snippet match the files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from tests.deploy.chart import ROOT, documents, one, template, values
from tests.support import alertmanager, tools

GUIDE = ROOT / "docs" / "operating.md"
SNIPPET = ROOT / "docs" / "alertmanager-rollback-bot.yml"


def amtool() -> str:
    found = shutil.which("amtool")
    if not found:
        binary = alertmanager.find_binary()
        beside = Path(binary).parent / "amtool" if binary else None
        found = str(beside) if beside and beside.exists() else None
    if not found:
        tools.missing("amtool", "apt install prometheus-alertmanager")
    assert found
    return found


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool(), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


def receiver(config: dict[str, Any]) -> dict[str, Any]:
    (found,) = [r for r in config["receivers"] if r["name"] == "rollback-bot"]
    return dict(found)


def test_alertmanager_snippet_passes_amtool_check_config(tmp_path: Path) -> None:
    done = check_config(SNIPPET)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    # The check is real: the same file with a misspelt key is refused.
    broken = tmp_path / "broken.yml"
    broken.write_text(SNIPPET.read_text().replace("send_resolved:", "send_resolve:"))
    refused = check_config(broken)
    assert refused.returncode != 0
    assert "send_resolve" in refused.stdout + refused.stderr


def test_snippet_posts_to_the_charts_service_and_the_bots_endpoint(tmp_path: Path) -> None:
    (webhook,) = receiver(yaml.safe_load(SNIPPET.read_text()))["webhook_configs"]
    url = urlparse(webhook["url"])
    assert url.path == "/alerts/alertmanager"
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    # The Service `helm install rollback-bot ... -n rollback-bot` creates, on its port.
    docs = documents(template(tmp_path, values(), release="rollback-bot"))
    service = one(docs, "Service")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert url.hostname == f"{name}.{namespace}.svc"
    assert (url.port or 80) == service["spec"]["ports"][0]["port"]


def test_guide_inline_receiver_is_the_checked_one_and_links_resolve() -> None:
    text = GUIDE.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    inline = [yaml.safe_load(b) for b in blocks if "webhook_configs" in b]
    assert len(inline) == 1
    assert receiver(inline[0]) == receiver(yaml.safe_load(SNIPPET.read_text()))
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if target.startswith("http"):
            continue
        assert (GUIDE.parent / target).exists(), target
