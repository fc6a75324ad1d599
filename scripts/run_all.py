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
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PORT = os.environ.get("PORT", "8000")
SIM_PORT = os.environ.get("SIM_PORT", "8765")
SCENARIO = os.environ.get("SCENARIO", "demo")
SEED = os.environ.get("SEED", "1")


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SITE_URL": os.environ.get("SITE_URL", f"http://127.0.0.1:{PORT}")}
    processes: list[tuple[str, subprocess.Popen, int]] = []

    def start(name: str, *cmd: str, stop_signal=signal.SIGTERM) -> None:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        processes.append((name, proc, stop_signal))

    def stop_all(*_):
        # Each main process shuts its own children down; what is left after 10 s is killed.
        for _, proc, stop_signal in reversed(processes):
            if proc.poll() is None:
                proc.send_signal(stop_signal)
        deadline = time.time() + 10
        for _, proc, _ in processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def interrupt(*_):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):  # explicit: a background shell job ignores SIGINT
        signal.signal(signum, interrupt)
    try:
        manage("ensure_demo_admin")
        sim_url = f"http://127.0.0.1:{SIM_PORT}"
        start("simulator", PY, "-m", "simulator", "--scenario", SCENARIO, "--port", SIM_PORT, "--seed", SEED)
        wait_until_up(f"{sim_url}/_sim/state", processes[-1][1])
        manage("seed_demo", "--sim-url", sim_url)
        celery = [PY, "-m", "celery", "-A", "config", "--quiet"]
        start("worker", *celery, "worker", "-Q", "default", "-c", "2", "-n", "default@%h", "-l", "warning")
        # Collector tasks never finish on their own: a cold shutdown (SIGQUIT) ends them at once;
        # their leases lapse and the next start takes the shards over.
        start("collectors", *celery, "worker", "-Q", "collectors", "-c", "8", "-n", "collectors@%h", "-l", "warning",
              stop_signal=signal.SIGQUIT)
        start("beat", *celery, "beat", "-l", "warning", "-s", str(ROOT / "var" / "celerybeat-schedule"))
        start("web", PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", PORT,
              "--log-level", "warning")
        wait_until_up(f"http://127.0.0.1:{PORT}/healthz", processes[-1][1], any_status=True)
        password = (ROOT / "var" / "demo-admin.txt").read_text().strip()
        print(f"\nLiquidity compliance monitor: http://127.0.0.1:{PORT}/  login admin / {password}\n"
              f"(simulator on {sim_url}, scenario {SCENARIO}; Ctrl-C stops everything)\n", flush=True)
        while True:
            for name, proc, _ in processes:
                if proc.poll() is not None:
                    print(f"{name} exited with status {proc.returncode}; stopping the rest.", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"Set-up step failed: {' '.join(map(str, exc.cmd[1:]))} (status {exc.returncode}).", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"{exc}; stopping.", file=sys.stderr)
        return 1
    finally:
        stop_all()


def wait_until_up(url: str, proc: subprocess.Popen, any_status: bool = False, timeout: float = 30) -> None:
    """Poll `url` until it answers (or the process dies / time runs out)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            if any_status:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")

if __name__ == "__main__":
    sys.exit(main())
