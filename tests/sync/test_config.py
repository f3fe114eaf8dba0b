"""Configuration: valid files load; bad ones stop with one message naming file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import ConfigError, describe, load_file, load_settings
from sync.secrets import Secret

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[connections.10.webhook]
tokens = ["t0ken-value"]
[connections.10.webcrm]
base_url = "https://api.webcrm.com"
auth_code = { env = "WC_CODE" }
[connections.10.uniconta]
base_url = "https://odata.uniconta.com"
company_id = 42
username = "srv"
password = "pw-secret"
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sync.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    conns = load_file(write(tmp_path, MINIMAL), {"WC_CODE": "abc-123"})
    conn = conns["10"]
    assert conn.webcrm.auth_code.reveal() == "abc-123"
    assert conn.organisations.trigger_keywords == ("Kunde",)
    assert conn.organisations.trigger_field == "OrganisationType"
    assert conn.webcrm.rate_limit_per_minute == 250
    assert conn.uniconta.daily_call_budget == 5000
    assert conn.flows == ("organisations", "items", "orders", "users", "persons")


def test_example_file_documents_a_valid_configuration() -> None:
    env = {"SYNC_10_WEBHOOK_TOKEN": "x" * 20, "WEBCRM_10_AUTH_CODE": "code", "UNICONTA_10_PASSWORD": "pw"}
    conns = load_file(str(ROOT / "examples" / "sync.toml"), env)
    assert list(conns) == ["10"]
    assert conns["10"].organisations.country_names == {"Færøerne": "FaroeIslands"}


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        pytest.param(MINIMAL.replace('company_id = 42\n', ''), {"WC_CODE": "a"},
                     "connections.10.uniconta.company_id: Missing data for required field", id="missing-key"),
        pytest.param(MINIMAL.replace("company_id = 42", 'company_id = "forty"'), {"WC_CODE": "a"},
                     "connections.10.uniconta.company_id: Not a valid integer", id="wrong-type"),
        pytest.param(MINIMAL + '[connections.10.x]\n', {"WC_CODE": "a"}, "connections.10.x: unknown key",
                     id="unknown-key"),
        pytest.param(MINIMAL.replace("[connections.10.webhook]", 'connections.10.flows = ["items", "invoices"]\n'
                                     "[connections.10.webhook]"), {"WC_CODE": "a"},
                     "connections.10.flows.1: Must be one of", id="unknown-flow"),
        pytest.param(MINIMAL, {}, "connections.10.webcrm.auth_code: Environment variable WC_CODE is not set",
                     id="unset-secret-env"),
        pytest.param(MINIMAL.replace("connections.10", "connections.\"bad id\""), {"WC_CODE": "a"},
                     "connections.bad id: connection ids may only use", id="bad-connection-id"),
        pytest.param(MINIMAL + "[connections.10.organisations]\ntrigger_field = \"OrganisationName\"\n",
                     {"WC_CODE": "a"}, "connections.10.organisations.trigger_field: Must be one of",
                     id="bad-trigger-field"),
        pytest.param(MINIMAL.replace('password = "pw-secret"', 'password = "pw"\nlive_reserve = 6000'),
                     {"WC_CODE": "a"}, "connections.10.uniconta.live_reserve: must be smaller", id="reserve"),
        pytest.param('connections = 3', {}, "connections: Not a valid mapping type", id="wrong-shape"),
        pytest.param('[connections.10\n', {}, "not valid TOML", id="bad-toml"),
    ],
)
def test_bad_configuration_names_file_key_and_problem(tmp_path: Path, text: str, env: dict[str, str],
                                                       expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_file(path, env)
    message = str(info.value)
    assert message.startswith(path + ":")
    assert expected in message
    assert "\n" not in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_file(str(tmp_path / "nope.toml"))


def test_signing_secret_must_be_standard_webhooks(tmp_path: Path) -> None:
    text = MINIMAL.replace('tokens = ["t0ken-value"]', 'tokens = ["t0ken-value"]\nsigning_secrets = ["%%%"]')
    with pytest.raises(ConfigError, match="signing_secrets: 0: not a Standard Webhooks secret"):
        load_file(write(tmp_path, text), {"WC_CODE": "a"})


def test_demo_connection_without_sync_config() -> None:
    settings = load_settings({})
    assert settings.demo and list(settings.connections) == ["demo"]
    demo = settings.connections["demo"]
    assert demo.webhook.tokens == (Secret("demo-token"),)
    assert demo.webcrm.base_url == "http://127.0.0.1:8101"
    assert demo.uniconta.company_id == 1234
    assert load_settings({"DEMO_WEBHOOK_TOKEN": "other"}).connections["demo"].webhook.tokens == (Secret("other"),)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT: must be 'text' or 'json'"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL: must be one of"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL: must start with"),
        ({"SYNC_MAX_ATTEMPTS": "many"}, "SYNC_MAX_ATTEMPTS: not a valid int"),
        ({"SYNC_RETRY_MAX_SECONDS": "0"}, "SYNC_RETRY_MAX_SECONDS: must be between"),
        ({"SYNC_CONFIG": "/does/not/exist.toml"}, "/does/not/exist.toml: file not found"),
        ({"REDIS_APPENDFSYNC": "sometimes"}, "REDIS_APPENDFSYNC: must be one of always, everysec, no, not 'sometimes'"),
    ],
)
def test_bad_environment(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(env)


def test_redis_fsync_policy_is_a_setting() -> None:
    from sync.redis_server import APPENDFSYNC_POLICIES

    assert load_settings({}).redis_appendfsync == "everysec"
    assert load_settings({"REDIS_APPENDFSYNC": "ALWAYS"}).redis_appendfsync == "always"
    assert set(APPENDFSYNC_POLICIES) == {"always", "everysec", "no"}


def test_describe_masks_secrets(tmp_path: Path) -> None:
    settings = load_settings({"SYNC_CONFIG": write(tmp_path, MINIMAL), "WC_CODE": "abc-123",
                              "SENTRY_DSN": "https://key@sentry.example/1"})
    text = repr(describe(settings))
    for secret in ("abc-123", "pw-secret", "t0ken-value", "https://key@sentry.example/1"):
        assert secret not in text
    assert "***" in text
