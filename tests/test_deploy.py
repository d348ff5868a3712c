"""docker-compose.yml and the Dockerfile: the shape the service needs (no Docker engine runs here)."""
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_services_and_reliability_settings(compose):
    services = compose["services"]
    assert set(services) == {"redis", "api", "worker", "worker-gpu"}
    assert "--appendonly" in services["redis"]["command"] and services["redis"]["healthcheck"]
    redis_command = services["redis"]["command"]
    # Bounded memory that refuses writes (a 503 from the API) instead of evicting jobs.
    assert redis_command[redis_command.index("--maxmemory-policy") + 1] == "noeviction" and "--maxmemory" in redis_command
    for name in ("api", "worker", "worker-gpu"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["environment"]["RESTORE_REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["command"][:4] == ["restore", "worker", "--queues", "cpu"]


def test_gpu_worker_is_a_profile_with_a_device_reservation(compose):
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["args"]["GPU"] == "1"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "--queues" in gpu["command"] and "gpu" in gpu["command"]


def test_dockerfile_bakes_the_models_in_with_pinned_versions():
    text = (REPO / "Dockerfile").read_text()
    assert "COPY models/manifest.json models/*.onnx models/*.md models/" in text and "restore models" in text
    assert 'pip install -c constraints.txt ".[service]"' in text


def _compose_clients() -> list:
    """Compose v2 (the docker CLI plugin) and v1 (docker-compose), where installed."""
    clients = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        clients.append(pytest.param(["docker", "compose"], id="v2"))
    else:
        clients.append(pytest.param(None, id="v2", marks=pytest.mark.skip(reason="the docker compose plugin (v2) is not installed here")))
    if shutil.which("docker-compose"):
        clients.append(pytest.param(["docker-compose"], id="v1"))
    else:
        clients.append(pytest.param(None, id="v1", marks=pytest.mark.skip(reason="docker-compose (v1) is not installed here")))
    return clients


@pytest.mark.parametrize("client", _compose_clients())
def test_compose_accepts_the_file(client):
    for profile in ([], ["--profile", "gpu"]):
        subprocess.run([*client, "-f", str(REPO / "docker-compose.yml"), *profile, "config", "-q"], check=True, timeout=60)
