"""docker-compose.yml, checked without Docker (there is no engine here): it is valid Compose,
every command it runs exists, every path it mounts exists, and every variable it sets is one
a bankrun process reads and docs/compose.md documents.

tests/data/compose_spec.json is the Compose Specification JSON Schema, copied verbatim from
`compose/config/compose_spec.json` in the docker-compose 1.29.2 wheel on PyPI
(`pip download --no-deps docker-compose==1.29.2 -d DIR`, then unzip that one file).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer.main
import yaml

from bankrun import auth
from bankrun.cli import app
from bankrun.runner.stack import SERVICES
from services.common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "tests" / "data" / "compose_spec.json").read_text())
RAW = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
IMAGE = "bankrun:local"  # the image ./Dockerfile builds, which every bankrun process runs
APP_DIR = "/app"  # the Dockerfile's WORKDIR, where it copies loadtests/ and ops/

#: `$$`, `${NAME}`, `${NAME:-default}` / `${NAME-default}`, `${NAME:?error}` / `${NAME?error}`
#: (required: no default), `$NAME`: Compose's interpolation
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*)|:?\?[^}]*)?\}|\$(\w+)")


def interpolate(value: Any, in_list: bool = False) -> Any:
    """The file as Compose sees it with no variable set: every `${NAME:-default}` becomes its
    default, and a mapping value that was a variable and reads as an integer becomes one (as
    Compose casts `replicas: ${N:-2}`); a list item, such as a command argument, stays text."""
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, in_list=True) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    out = VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else m.group(2) or "", value)
    return int(out) if out.isdigit() and not in_list else out


def variables(value: Any) -> set[str]:
    """Every variable the file reads from the shell."""
    if isinstance(value, dict):
        return set().union(*(variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(variables(v) for v in value))
    if not isinstance(value, str):
        return set()
    return {m.group(1) or m.group(3) for m in VARIABLE.finditer(value) if m.group(0) != "$$"}


COMPOSE = interpolate(RAW)
OURS = {name: s for name, s in COMPOSE["services"].items() if s.get("image") == IMAGE}


def schema_errors(document: dict[str, Any]) -> list[str]:
    # the draft its $schema names; jsonschema does not recognise that URI's trailing '#'
    validator = jsonschema.Draft201909Validator(SPEC)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


# (a) valid Compose


def test_the_file_is_valid_compose_specification() -> None:
    assert schema_errors(COMPOSE) == []
    assert "version" not in COMPOSE  # obsolete in the Compose Specification


def test_the_schema_rejects_what_compose_would() -> None:
    """Guards the check above: a schema that accepted anything would pass any file."""
    broken = interpolate(RAW)
    broken["services"]["custody"]["replicas"] = 2  # belongs under deploy:
    broken["services"]["gateway"]["deploy"]["replicas"] = "two"
    errors = schema_errors(broken)
    assert any("services/custody" in e for e in errors)
    assert any("services/gateway/deploy/replicas" in e for e in errors)


def test_scaled_services_take_their_replicas_from_variables() -> None:
    replicas = {name: RAW["services"][name]["deploy"]["replicas"] for name in SERVICES}
    assert replicas == {
        "custody": "${CUSTODY_REPLICAS:-2}",
        "withdrawal": "${WITHDRAWAL_REPLICAS:-2}",
        "matching": "${MATCHING_REPLICAS:-2}",
        "gateway": "${GATEWAY_REPLICAS:-1}",
    }
    assert RAW["services"]["locust-worker"]["deploy"]["replicas"] == "${LOCUST_WORKERS:-2}"


# (b) every command and path exists


def test_services_run_what_the_embedded_stack_runs() -> None:
    """Compose starts each service exactly as bankrun.runner.stack does, and it is importable."""
    for name, args in SERVICES.items():
        command = OURS[name]["command"]
        assert command == ["python", *args], name
        module = command[command.index("-A") + 1] if "-A" in command else command[2]
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, module
        if "-A" in command:  # a faust app: services/<name>/app.py
            assert (ROOT / Path(*module.split("."))).with_suffix(".py").is_file()


def test_bankrun_commands_exist_and_accept_their_arguments() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    used = [s["command"] for s in OURS.values() if s["command"][0] == "bankrun"]
    assert used, "the topics one-shot runs `bankrun topics`"
    for name, *args in (c[1:] for c in used):
        assert name in commands, f"bankrun has no `{name}` command"
        commands[name].make_context(f"bankrun {name}", list(args))  # raises on a bad option


def test_locust_runs_the_locustfile_the_image_holds() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"WORKDIR {APP_DIR}" in dockerfile
    assert "COPY loadtests ./loadtests" in dockerfile
    for name in ("locust-master", "locust-worker"):
        command = OURS[name]["command"]
        assert command[0] == "locust"
        locustfile = command[command.index("-f") + 1]
        assert (ROOT / Path(locustfile).relative_to(APP_DIR)).is_file(), locustfile
    assert OURS["locust-worker"]["command"][-2:] == ["--master-host", "locust-master"]


def test_every_bankrun_process_has_a_command() -> None:
    """The image's CMD only prints help: a service without a command would do nothing."""
    assert set(OURS) >= {*SERVICES, "topics", "locust-master", "locust-worker"}
    assert all(s.get("command") for s in OURS.values())


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path, for the mounts that come from the repository."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = ROOT / source
    return mounts


def test_mounted_host_paths_exist_and_named_volumes_are_declared() -> None:
    for name, service in COMPOSE["services"].items():
        for target, source in bind_mounts(service).items():
            if source == ROOT / "runs":
                continue  # where run folders go: made by the first run, like `make run` does
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in COMPOSE["volumes"], f"{name}: undeclared volume {source}"


def host_path(service: str, container_path: str) -> Path:
    """Where a file the container reads comes from, through the service's bind mounts."""
    for target, source in bind_mounts(COMPOSE["services"][service]).items():
        if container_path.startswith(target + "/"):
            return source / container_path.removeprefix(target + "/")
    raise AssertionError(f"{service}: nothing mounted at {container_path}")


def prometheus_config() -> tuple[Path, dict[str, Any]]:
    flags = dict(f.partition("=")[::2] for f in COMPOSE["services"]["prometheus"]["command"])
    path = host_path("prometheus", flags["--config.file"])
    return path, yaml.safe_load(path.read_text())


def test_prometheus_loads_the_generated_compose_config_and_its_rules() -> None:
    path, config = prometheus_config()
    assert path == ROOT / "ops" / "prometheus" / "prometheus.compose.yml"
    for pattern in config["rule_files"]:
        rules = host_path("prometheus", pattern)
        assert list(rules.parent.glob(rules.name)), f"no rule file matches {pattern}"


def test_prometheus_scrapes_every_service_where_it_listens() -> None:
    _, config = prometheus_config()
    scraped = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            scraped.update(dict.fromkeys(sd["names"], sd["port"]))
    assert scraped == {name: int(OURS[name]["environment"]["BANKRUN_PORT"]) for name in SERVICES}


def test_grafana_and_locust_point_at_compose_services() -> None:
    datasources = host_path("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml")
    url = urlsplit(yaml.safe_load(datasources.read_text())["datasources"][0]["url"])
    assert url.hostname in COMPOSE["services"] and url.port == 9090
    provider = host_path("grafana", "/etc/grafana/provisioning/dashboards/bankrun.yml")
    dashboards = yaml.safe_load(provider.read_text())["providers"][0]["options"]["path"]
    assert list(host_path("grafana", dashboards + "/x").parent.glob("*.json"))
    master = OURS["locust-master"]["command"]
    gateway = urlsplit(master[master.index("--host") + 1])
    assert gateway.hostname == "gateway"
    assert gateway.port == int(OURS["gateway"]["environment"]["BANKRUN_PORT"])


# (c) every variable set is one a process reads


def locustfile_variables() -> set[str]:
    text = (ROOT / "loadtests" / "locustfile.py").read_text()
    return set(re.findall(r"os\.environ\.get\(\"(BANKRUN_\w+)\"", text))


SETTINGS_VARIABLES = {f"BANKRUN_{name.upper()}" for name in ServiceSettings.model_fields}
#: the auth secret, read by `bankrun.auth` in the gateway, Locust and the runner
AUTH_VARIABLES = set(auth.VARIABLES)


def bankrun_env(service: dict[str, Any]) -> set[str]:
    return {k for k in service.get("environment") or {} if k.startswith("BANKRUN_")}


def test_services_set_only_settings_fields_and_all_that_have_no_default() -> None:
    required = {
        f"BANKRUN_{n.upper()}" for n, f in ServiceSettings.model_fields.items() if f.is_required()
    }
    for name in SERVICES:
        secrets = {"gateway": AUTH_VARIABLES, "custody": {auth.POR_SECRET_ENV}}.get(name, set())
        env = bankrun_env(OURS[name]) - secrets
        assert env <= SETTINGS_VARIABLES, f"{name}: {env - SETTINGS_VARIABLES}"
        assert required <= env, name
        assert OURS[name]["environment"]["BANKRUN_HOST"] == "0.0.0.0"  # reachable by others


def test_locust_sets_only_what_the_locustfile_reads() -> None:
    reads = locustfile_variables() | AUTH_VARIABLES  # the locustfile's Tokens.from_env()
    assert reads >= {"BANKRUN_ASKS", "BANKRUN_LOCUST_WORKERS"}
    for name in ("locust-master", "locust-worker"):
        env = bankrun_env(OURS[name])
        assert env <= reads, f"{name}: {env - reads}"
        assert OURS[name]["environment"]["BANKRUN_ASKS"].startswith("/asks/")
        assert "asks:/asks" in OURS[name]["volumes"]
    assert (
        RAW["services"]["locust-worker"]["environment"]["BANKRUN_LOCUST_WORKERS"]
        == RAW["services"]["locust-worker"]["deploy"]["replicas"]
    ), "each worker takes every N-th ask: N must be the number of workers"


def test_every_bankrun_variable_set_is_read_somewhere() -> None:
    everywhere = set().union(*(bankrun_env(s) for s in COMPOSE["services"].values()))
    unread = everywhere - SETTINGS_VARIABLES - locustfile_variables() - AUTH_VARIABLES
    assert not unread


def test_the_secret_comes_from_the_shell_to_whoever_makes_or_checks_tokens() -> None:
    for name in ("gateway", "locust-master", "locust-worker", "runner"):
        value = RAW["services"][name]["environment"]["BANKRUN_AUTH_SECRET"]
        assert value.startswith("${BANKRUN_AUTH_SECRET:?"), name  # required, never a default
    assert "BANKRUN_AUTH_SECRET" in variables(RAW)
    for name in ("custody", "withdrawal", "matching", "prometheus", "grafana", "kafka"):
        assert "BANKRUN_AUTH_SECRET" not in (COMPOSE["services"][name].get("environment") or {})


def test_the_proof_of_reserves_secret_goes_to_custody_and_the_gateway_alone() -> None:
    for name in ("custody", "gateway"):
        value = RAW["services"][name]["environment"]["BANKRUN_POR_SECRET"]
        assert value.startswith("${BANKRUN_POR_SECRET:?"), name
    for name in ("withdrawal", "matching", "locust-master", "locust-worker", "prometheus"):
        assert "BANKRUN_POR_SECRET" not in (COMPOSE["services"][name].get("environment") or {})


# (d) documented


def documented() -> set[str]:
    """The variables named in the first column of a table in docs/compose.md."""
    rows = (ROOT / "docs" / "compose.md").read_text().splitlines()
    cells = [row.split("|")[1] for row in rows if row.startswith("|")]
    return set(re.findall(r"`(\w+)`", " ".join(cells)))


@pytest.mark.parametrize("kind", ["set in the containers", "read from the shell"])
def test_every_variable_is_documented(kind: str) -> None:
    if kind == "set in the containers":
        names = set().union(*(bankrun_env(s) for s in COMPOSE["services"].values()))
    else:
        names = variables(RAW)
    assert names, kind
    assert names <= documented(), f"undocumented in docs/compose.md: {names - documented()}"
