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


def test_dockerfile_bakes_the_models_in():
    text = (REPO / "Dockerfile").read_text()
    assert "COPY models/manifest.json models/*.onnx models/" in text and "restore models" in text


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed here")
def test_compose_accepts_the_file():
    for profile in ([], ["--profile", "gpu"]):
        subprocess.run(["docker-compose", *profile, "-f", str(REPO / "docker-compose.yml"), "config", "-q"], check=True, timeout=60)
