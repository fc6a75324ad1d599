"""Running the real ASGI app (uvicorn) against the test database, Debian's Chromium through Playwright,
and a publisher that sends market updates from its own event loop the way the collectors do."""
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from channels.layers import get_channel_layer
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(db_name: str, static_root: Path, **overrides: str) -> dict:
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db_name}",
        "REDIS_URL": settings.REDIS_URL,
        "STATIC_ROOT": str(static_root),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DB_CONN_MAX_AGE": "0",  # the tests flush tables between runs: no long-held connections
        **overrides,
    }


class AsgiServer:
    """uvicorn config.asgi:application in a subprocess on a free loopback port (the project at `root`:
    this tree, or another revision's for a side-by-side bench)."""

    def __init__(self, db_name: str, static_root: Path, *, root: Path = ROOT, **env: str):
        self.env = server_env(db_name, static_root, **env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=root, env=self.env,
                       check=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"],
            cwd=root, env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/login/", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.process.poll() is not None:
                    raise RuntimeError("uvicorn exited during start-up")
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("uvicorn did not answer within 30 s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Publisher:
    """group_send from one persistent event loop in its own thread (as the collectors publish)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()

    def publish(self, payload: dict):
        body = {"type": "market.update", "payload": payload}

        async def send():
            await self.layer.group_send("overview", body)
            await self.layer.group_send(f"market.{payload['market_id']}", body)

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(timeout=10)

    def close(self):
        async def flush():
            await self.layer.flush()

        asyncio.run_coroutine_threadsafe(flush(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def login(page, base_url: str, username: str, password: str):
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
