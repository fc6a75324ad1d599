"""`manage.py collect` in the foreground against the simulator: collects, stores, stops cleanly on Ctrl-C."""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection

from collectors import leases
from tests.collectors.test_runner_simulator import make_venue, simulator  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_collect_command_runs_a_leased_shard_and_flushes_on_sigint(simulator, tmp_path):
    venue = make_venue(simulator)
    db = connection.settings_dict
    prefix = f"lcm-cmd-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "REDIS_URL": settings.REDIS_URL, "COLLECTOR_LEASE_PREFIX": prefix, "VAR_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "collect", "--venue", venue.name, "--markets", "BTCUSDT", "ETHUSDT",
         "--capture", str(tmp_path / "capture")],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Wait for the first stored seconds (a loaded machine takes a while to start Django),
        # then a few more before Ctrl-C.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FILTER (WHERE valid) FROM compliance_sample")
                if cur.fetchone()[0] >= 2:
                    break
            time.sleep(0.5)
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "binance-spot#cli-BTCUSDT-ETHUSDT: BTCUSDT, ETHUSDT" in out
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE valid) FROM compliance_sample")
        total, valid = cur.fetchone()
        cur.execute("TRUNCATE compliance_sample, compliance_book_snapshot")
    assert total >= 6 and valid >= 4  # two markets, a few seconds, flushed on the way out
    saved, leases.PREFIX = leases.PREFIX, prefix
    try:
        assert leases.lease_owner("binance-spot#cli-BTCUSDT-ETHUSDT") is None  # released on exit
        client = leases.sync_client()
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
    finally:
        leases.PREFIX = saved
    assert list((tmp_path / "capture").glob("*.gz"))  # raw capture written


def test_unknown_venue_or_market_is_a_clear_error(simulator):
    make_venue(simulator)
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No venue named 'nope'"):
        call_command("collect", "--venue", "nope")
    with pytest.raises(CommandError, match="no active market DOGEUSDT"):
        call_command("collect", "--venue", "binance-spot", "--markets", "DOGEUSDT")
    with pytest.raises(CommandError, match="--markets needs --venue"):
        call_command("collect", "--markets", "BTCUSDT")
