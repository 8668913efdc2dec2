"""The demo app's views through Django's test client: bodies, headers, and every 400."""

import math
import subprocess
import sys
import time

import pytest
from django.test import Client, override_settings

from demo_app import csvgen


@pytest.fixture
def client():
    return Client()


def test_csv_generation_matches_the_original_example():
    lines = csvgen.csv_text(100).splitlines()
    assert lines[0] == "One,Two,Three"
    assert lines[1] == "Hello,world,1"
    assert lines[-1] == "Hello,world,99"
    assert len(lines) == 100


@pytest.mark.parametrize("rows", [0, 1, 2, 9, 10, 11, 99, 100, 101, 12_345])
def test_csv_size_is_exact(rows):
    assert csvgen.csv_size(rows) == len(csvgen.csv_text(rows).encode())


@pytest.mark.parametrize("nbytes", [1, 15, 16, 1000, 10**6])
def test_rows_for_size_is_the_smallest_that_fits(nbytes):
    rows = csvgen.rows_for_size(nbytes)
    assert csvgen.csv_size(rows) >= nbytes
    assert csvgen.csv_size(rows - 1) < nbytes


def test_plain_download(client):
    response = client.get("/download_csv")
    assert response.status_code == 200
    assert response.streaming is False
    assert response.content == csvgen.csv_text(100).encode()
    assert response["Content-Length"] == str(len(response.content))
    assert response["Content-Type"] == "text/csv"
    assert "big.csv" in response["Content-Disposition"]


def test_streaming_download(client):
    response = client.get("/download_csv_streaming", {"rows": 1000, "chunk_rows": 7})
    assert response.status_code == 200
    assert response.streaming is True
    assert not response.has_header("Content-Length")
    chunks = list(response.streaming_content)
    assert len(chunks) == math.ceil(1000 / 7)
    assert b"".join(chunks) == csvgen.csv_text(1000).encode()


def test_streaming_download_with_its_length(client):
    response = client.get("/download_csv_streaming_sized", {"rows": 1000, "chunk_rows": 7})
    assert response.status_code == 200
    assert response.streaming is True
    assert response["Content-Length"] == str(csvgen.csv_size(1000))
    chunks = list(response.streaming_content)
    assert len(chunks) == math.ceil(1000 / 7)
    assert b"".join(chunks) == csvgen.csv_text(1000).encode()


def test_streaming_default_chunking(client, settings):
    rows = settings.DEMO_DEFAULT_CHUNK_ROWS * 2 + 1
    response = client.get("/download_csv_streaming", {"rows": rows})
    assert len(list(response.streaming_content)) == 3


def test_zero_rows_is_an_empty_body(client):
    assert client.get("/download_csv", {"rows": 0}).content == b""
    assert b"".join(client.get("/download_csv_streaming", {"rows": 0}).streaming_content) == b""


def test_delay_slows_each_chunk(client):
    start = time.perf_counter()
    response = client.get("/download_csv_streaming", {"rows": 4, "chunk_rows": 1, "delay_ms": 50})
    assert len(list(response.streaming_content)) == 4
    assert time.perf_counter() - start >= 4 * 0.05


BAD_REQUESTS = [
    ("/download_csv", {"rows": "abc"}, "rows must be a whole number"),
    ("/download_csv", {"rows": "1.5"}, "rows must be a whole number"),
    ("/download_csv", {"rows": ""}, "rows must be a whole number"),
    ("/download_csv", {"rows": "１２"}, "rows must be a whole number"),
    ("/download_csv", {"rows": "1e3"}, "rows must be a whole number"),
    ("/download_csv", {"rows": "9" * 400}, "rows must be a whole number"),
    ("/download_csv", {"rows": "-1"}, "rows must be between 0 and"),
    ("/download_csv", {"rows": "2000001"}, "rows must be between 0 and 2000000"),
    ("/download_csv", {"rows": ["1", "2"]}, "rows was given 2 times"),
    ("/download_csv_streaming", {"rows": "-5"}, "rows must be between 0 and"),
    ("/download_csv_streaming", {"rows": "100000001"}, "rows must be between"),
    ("/download_csv_streaming", {"chunk_rows": "0"}, "chunk_rows must be between 1 and"),
    ("/download_csv_streaming", {"chunk_rows": "x"}, "chunk_rows must be a whole number"),
    ("/download_csv_streaming", {"delay_ms": "-1"}, "delay_ms must be between 0 and"),
    ("/download_csv_streaming", {"delay_ms": "10001"}, "delay_ms must be between 0 and 10000"),
    ("/download_csv_streaming", {"delay_ms": "0.5"}, "delay_ms must be a whole number"),
    ("/download_csv_streaming_sized", {"rows": "-5"}, "rows must be between 0 and"),
    ("/download_csv_streaming_sized", {"delay_ms": "x"}, "delay_ms must be a whole number"),
    ("/empty", {"status": "500"}, "status must be between 200 and 304"),
    ("/empty", {"status": "201"}, "status must be one of (200, 204, 304)"),
]


@pytest.mark.parametrize("path, params, reason", BAD_REQUESTS)
def test_bad_parameter_is_a_400_with_a_one_line_reason(
    client, assert_bad_request, path, params, reason
):
    assert_bad_request(client.get(path, params), reason)


def test_caps_are_settings(client):
    with override_settings(DEMO_MAX_ROWS=10):
        assert client.get("/download_csv", {"rows": 10}).status_code == 200
        assert client.get("/download_csv", {"rows": 11}).status_code == 400


def test_caps_are_read_from_the_environment():
    code = "import demo_app.settings as s; print(s.DEMO_MAX_ROWS, s.DEMO_MAX_STREAMING_ROWS)"
    env = {"DEMO_MAX_ROWS": "10", "DEMO_MAX_STREAMING_ROWS": "20", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["10", "20"]
    env["DEMO_MAX_ROWS"] = "lots"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "DEMO_MAX_ROWS='lots' is not a whole number" in out.stderr


@pytest.mark.parametrize(
    "path",
    ["/download_csv", "/download_csv_streaming", "/download_csv_streaming_sized", "/hello",
     "/empty"],
)
def test_only_safe_methods(client, path):
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200


@pytest.mark.parametrize("status", [200, 204, 304])
def test_empty_statuses(client, status):
    response = client.get("/empty", {"status": status})
    assert response.status_code == status
    assert response.content == b""


def test_hello_views(client):
    assert client.get("/hello").content == b"Hello, there!\n"
    assert b"".join(client.get("/hello_streaming").streaming_content) == b"Hello, there!\n"
    assert client.get("/").status_code == 200
    assert client.get("/no-such-page").status_code == 404


def test_debug_is_off_and_hosts_are_loopback(settings):
    assert settings.DEBUG is False
    assert set(settings.ALLOWED_HOSTS) >= {"127.0.0.1", "localhost"}
    assert "*" not in settings.ALLOWED_HOSTS
