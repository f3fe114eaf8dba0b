"""docs/operations.md lists every metric the endpoints serve, and the examples use only those."""

from __future__ import annotations

import json
import re
from pathlib import Path

import redis
import yaml
from prometheus_client import Counter, Histogram

from sync import metrics
from sync.config import load_settings
from tasks.metrics import StateCollector

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = ("_bucket", "_sum", "_count")


def documented() -> set[str]:
    section = (ROOT / "docs" / "operations.md").read_text().split("## Metrics", 1)[1]
    return set(re.findall(r"^\| `(sync_\w+)` \|", section, flags=re.M))


def served(r: redis.Redis) -> set[str]:
    """Names as they appear in the text format: counters with _total, histograms by family name."""
    recorded = {m.describe()[0].name + ("_total" if isinstance(m, Counter) else "") for m in vars(metrics).values()
                if isinstance(m, Counter | Histogram)}
    read = {family.name for family in StateCollector(load_settings({}), r).collect()}
    return recorded | read


def used_in_examples() -> set[str]:
    rules = yaml.safe_load((ROOT / "examples" / "prometheus-rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((ROOT / "examples" / "grafana-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    names = {name for expr in exprs for name in re.findall(r"\bsync_\w+", expr)}
    return {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n) for n in names}


def test_every_metric_is_documented_and_the_examples_use_real_ones(redis_client: redis.Redis) -> None:
    names = served(redis_client)
    assert len(names) == 18
    assert documented() == names
    assert used_in_examples() <= names
    assert {"sync_dead_letters_waiting", "sync_uniconta_budget_used_ratio", "sync_lag_seconds"} <= used_in_examples()
