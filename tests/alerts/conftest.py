"""Real local receivers (SMTP via aiosmtpd, an HTTP server standing in for Slack / a webhook),
a monitored tier-1 market, and a writer for compliance_sample rows."""
import json
import socket
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.utils import timezone

from compliance.models import Market, Venue
from compliance.partitions import ensure_partitions
from compliance.services import change_obligation, load_tier_presets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every message the SMTP server accepted."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": envelope.rcpt_tos, "data": envelope.content.decode("utf8", "replace")})
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    yield inbox
    controller.stop()


class Receiver:
    """An HTTP endpoint that answers with scripted statuses (then 200) and records every request."""

    def __init__(self):
        self.requests = []  # (status answered, headers, parsed JSON body)
        self.script = []
        self.hang = threading.Event()  # set: the next request is never answered
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = outer.script.pop(0) if outer.script else 200
                outer.requests.append((status, dict(self.headers), json.loads(body), body))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no_service" if status in (404, 410) else b"error")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/XXXX"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def delivered(self):
        return [r for r in self.requests if r[0] == 200]


@pytest.fixture
def http_receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def market(django_user_model):
    load_tier_presets()
    venue = Venue.objects.create(
        name="Binance spot (test)", exchange="binance", market_type="spot", tier=1,
        rest_base_url="http://127.0.0.1:9", ws_base_url="ws://127.0.0.1:9",
    )
    market = Market.objects.create(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"))
    # Tier 1 preset: max spread 0.8 %, target ≤ 0.5 %, depth ≥ $25k, uptime 98 %.
    change_obligation(market=market, terms={}, changed_by=None, reason="tier-1 preset for the test",
                      effective_from=timezone.now() - timedelta(days=2))
    yield market
    with connection.cursor() as cur:
        cur.execute("DELETE FROM compliance_sample WHERE market_id = %s", [market.id])


def write_samples(market_id, start, seconds, *, spread_pct, depth_usd=60_000.0, valid=True):
    """One sample per second over [start, start + seconds), the shape the collectors write."""
    ensure_partitions(start.date(), (start + timedelta(seconds=seconds)).date())
    rows = []
    for i in range(seconds):
        ts = start + timedelta(seconds=i)
        ask = 100.0
        bid = ask * (1 - spread_pct / 100)
        rows.append((market_id, ts, valid, bid if valid else None, ask if valid else None, (bid + ask) / 2 if valid else None,
                     spread_pct if valid else None, (ask - bid) / ((ask + bid) / 2) * 100 if valid else None, 2.0,
                     depth_usd / 2 if valid else None, depth_usd / 2 if valid else None))
    with connection.cursor() as cur:
        cur.executemany(
            """INSERT INTO compliance_sample (market_id, ts, valid, best_bid, best_ask, mid, spread_ask_pct, spread_mid_pct,
                   band_pct, depth_bid_usd, depth_ask_usd) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (market_id, ts) DO UPDATE SET valid = EXCLUDED.valid, spread_ask_pct = EXCLUDED.spread_ask_pct,
                   spread_mid_pct = EXCLUDED.spread_mid_pct, depth_bid_usd = EXCLUDED.depth_bid_usd,
                   depth_ask_usd = EXCLUDED.depth_ask_usd""",
            rows,
        )


@pytest.fixture
def desk_user(django_user_model):
    # Not the shared admin_user: transactional tests flush the role groups a reused database had.
    return django_user_model.objects.create_user("desk-admin", password="pw-123456-x")
