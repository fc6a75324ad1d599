"""docker-compose.yml: `docker compose config` where the CLI exists, and its shape everywhere."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_file_declares_the_whole_stack():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"db", "redis", "web", "worker", "beat", "simulator"} <= set(services)
    for name in ("db", "redis", "web", "simulator"):
        assert "healthcheck" in services[name], name
    assert {"pgdata", "appdata"} <= set(spec["volumes"])
    for name in ("web", "worker", "beat", "collectors"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose CLI plugin is not installed here",
)
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
