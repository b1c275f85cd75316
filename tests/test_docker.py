"""docker/: what the compose deployment's front door (nginx, docker/nginx.conf) hands to Django."""

import re
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
#: What nginx puts in its variables for a browser on the published port (http://127.0.0.1:8001/):
#: ``$host`` is the host name without the port, ``$http_host`` the request's Host header as sent.
NGINX_VARIABLES = {"$host": "127.0.0.1", "$http_host": "127.0.0.1:8001"}
BROWSER_ORIGIN = "http://127.0.0.1:8001"


def _forwarded_hosts() -> list[str]:
    text = (ROOT / "docker" / "nginx.conf").read_text()
    return re.findall(r"proxy_set_header\s+Host\s+(\S+);", text)


@pytest.mark.django_db
def test_nginx_forwarded_host_with_a_browser_form_post_passes_the_csrf_origin_check():
    # Arrange: the Host header nginx forwards for a browser on the published port, and the login
    # form's CSRF token as the page gave it
    hosts = _forwarded_hosts()
    assert hosts, "docker/nginx.conf forwards no Host header"
    client = Client(enforce_csrf_checks=True)
    for variable in hosts:
        host = NGINX_VARIABLES[variable]
        client.get("/accounts/login/", HTTP_HOST=host)
        token = client.cookies["csrftoken"].value

        # Act: the browser posts the login form; its Origin carries the published port
        response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong",
                                                     "csrfmiddlewaretoken": token},
                               HTTP_HOST=host, HTTP_ORIGIN=BROWSER_ORIGIN)

        # Assert: the form is checked (200, wrong password), not refused as cross-site (403)
        assert response.status_code == 200, (variable, response.status_code)


def test_nginx_front_door_does_not_serve_the_metrics_that_prometheus_scrapes_inside():
    # Arrange: the front door's configuration and Prometheus's scrape targets
    nginx = (ROOT / "docker" / "nginx.conf").read_text()
    prometheus = (ROOT / "docker" / "prometheus" / "prometheus.yml").read_text()

    # Act: the exact-match location for /metrics, if any, and what it does
    refused = re.search(r"location\s*=\s*/metrics\s*\{\s*return\s+(\d{3})\s*;\s*\}", nginx)

    # Assert: /metrics is refused at the front door, and Prometheus reaches the processes directly
    assert refused is not None and refused.group(1) in {"403", "404"}
    assert "api:8000" in prometheus and "web:8002" in prometheus
