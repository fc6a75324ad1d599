#!/usr/bin/env python
"""Start the whole product on the local simulator and stop it all on Ctrl-C.

Started: the exchange simulator (demo scenario), the ASGI server (HTTP + WebSockets), a Celery
worker for periodic work, a Celery worker for the collectors queue, and Celery beat. Before that:
the demo administrator and the demo venues/markets (idempotent, so running twice is safe).
Environment: PORT (8000), SIM_PORT (8765), SCENARIO (demo), SEED (1), plus the product's own
variables (DATABASE_URL, REDIS_URL, ...).
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PORT = os.environ.get("PORT", "8000")
SIM_PORT = os.environ.get("SIM_PORT", "8765")
SCENARIO = os.environ.get("SCENARIO", "demo")
SEED = os.environ.get("SEED", "1")


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def has_command(name: str) -> bool:
    out = subprocess.run([PY, "manage.py", "help", "--commands"], cwd=ROOT, capture_output=True, text=True).stdout
    return name in out.split()


def main() -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SITE_URL": os.environ.get("SITE_URL", f"http://127.0.0.1:{PORT}")}
    processes: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, *cmd: str) -> None:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        processes.append((name, proc))

    def stop_all(*_):
        for _, proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for _, proc in processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    manage("ensure_demo_admin")
    sim_url = f"http://127.0.0.1:{SIM_PORT}"
    start("simulator", PY, "-m", "simulator", "--scenario", SCENARIO, "--port", SIM_PORT, "--seed", SEED)
    time.sleep(1.5)
    if has_command("seed_demo"):
        manage("seed_demo", "--sim-url", sim_url)
    celery = [PY, "-m", "celery", "-A", "config"]
    start("worker", *celery, "worker", "-Q", "default", "-c", "2", "-n", "default@%h", "-l", "warning")
    start("collectors", *celery, "worker", "-Q", "collectors", "-c", "8", "-n", "collectors@%h", "-l", "warning")
    start("beat", *celery, "beat", "-l", "warning", "-s", str(ROOT / "var" / "celerybeat-schedule"))
    start("web", PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", PORT, "--log-level", "warning")

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(f"\nLiquidity compliance monitor: http://127.0.0.1:{PORT}/  (simulator on {sim_url}; Ctrl-C stops everything)\n", flush=True)
    try:
        while True:
            for name, proc in processes:
                if proc.poll() is not None:
                    print(f"{name} exited with status {proc.returncode}; stopping the rest.", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
