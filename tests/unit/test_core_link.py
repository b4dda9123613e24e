"""A worker host's reads of Core (`CoreLink.read`: a run's owner and archived outcome) wait out a Core that
is restarting: refused connections and 502/503 answers are tried again until Core answers, for a bounded
time. A real HTTP server on 127.0.0.1 plays Core (its port closed at first, then 503s, then the answer)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from swarmsync.core_link import CoreLink
from tests.conftest import free_port


class Core:
    """Answers GET /worker/runs/ID/owner: `unavailable` 503s first, then the owner."""

    def __init__(self, port: int, unavailable: int = 0) -> None:
        self.unavailable, self.calls = unavailable, 0
        core = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                core.calls += 1
                status, body = (503, {"detail": "starting"}) if core.calls <= core.unavailable else (
                    200, {"role": "operator", "project_role": "member", "path": self.path})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_read_waits_for_a_core_that_is_restarting() -> None:
    port = free_port()
    link = CoreLink(f"http://127.0.0.1:{port}", f"ssw_{port}")
    started: list[Core] = []
    # Core comes back 1.5 s later and answers 503 once more before it is ready
    timer = threading.Timer(1.5, lambda: started.append(Core(port, unavailable=1)))
    timer.start()
    try:
        owner = link.run_owner("run-1")
    finally:
        timer.join()
        for core in started:
            core.close()
    assert owner["role"] == "operator" and owner["path"] == "/worker/runs/run-1/owner"
    assert started[0].calls == 2


def test_a_read_gives_up_after_its_patience() -> None:
    link = CoreLink(f"http://127.0.0.1:{free_port()}", "ssw_x")  # nothing listens there
    with pytest.raises(httpx.ConnectError):
        link.read("/worker/runs/run-1/owner", patience=2)
    core = Core(free_port(), unavailable=100)
    try:
        response = CoreLink(f"http://127.0.0.1:{core.server.server_address[1]}", "ssw_y").read("/x", patience=2)
    finally:
        core.close()
    assert response.status_code == 503 and core.calls >= 2  # tried again, then the last answer is returned


def test_an_upload_gives_up_after_its_patience(tmp_path) -> None:
    """Uploads wait for Core the same way (their own patience), then fail with the store's error."""
    import uuid

    from swarmsync.archive.core_store import CoreStore
    from swarmsync.archive.errors import ArchiveStoreError

    output = tmp_path / "output.txt"
    output.write_bytes(b"hello\n")
    store = CoreStore(CoreLink(f"http://127.0.0.1:{free_port()}", "ssw_z"), patience=2)
    with pytest.raises(ArchiveStoreError, match=r"upload of output.txt of job .* to Core gave up after 2 s"):
        store.put(f"{uuid.uuid4()}/output.txt", output)
