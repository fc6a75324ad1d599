import re
from datetime import timedelta
from pathlib import Path

import pytest

from compliance.models import ObligationVersion

from .conftest import make_market, sample, utcnow, write_samples

pytestmark = pytest.mark.django_db

EDIT = {
    "spread_target_min_pct": "0.1", "spread_target_max_pct": "0.4", "spread_max_pct": "0.7", "spread_denominator": "ask",
    "depth_band_pct": "2", "depth_reference": "mid", "depth_min_usd": "30000", "depth_min_side_usd": "",
    "depth_counts_for_uptime": "on", "uptime_required_pct": "98", "evaluation_method": "minute", "minute_rule": "all_valid",
    "minute_rule_share_pct": "100", "snapshot_interval_s": "10", "snapshot_day_share_pct": "75",
    "snapshot_month_share_pct": "80", "presence_required_pct": "50", "max_cancel_ratio_pct": "8",
    "max_quote_deviation_pct": "0.05", "min_depth_share_pct": "10", "quote_refresh_ms": "200",
    "slippage_order_usd": "10000", "vol_trigger_pct": "1.5", "vol_trigger_multiple": "2", "vol_cap_multiple": "3",
    "vol_recovery_minutes": "10", "early_warning_fraction": "0.9", "dust_notional_usd": "50",
    "indicator_warning_fraction": "0.8", "reason": "MMA amendment 3, clause 4.2",
}


@pytest.mark.parametrize("path", ["/", "/markets/1/", "/obligations/", "/obligations/1/"])
def test_anonymous_pages_go_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_anonymous_api_is_refused(client):
    assert client.get("/api/overview/").status_code == 401


def test_overview_lists_markets_with_their_status(client, viewer):
    m = make_market("WIDEUSDT")
    write_samples([sample(m.id, utcnow() - timedelta(seconds=1), spread=1.0)])
    client.force_login(viewer)
    page = client.get("/")
    assert page.status_code == 200 and b"WIDEUSDT" in page.content and b"All times UTC" in page.content
    rows = client.get("/api/overview/").json()["rows"]
    assert rows[0]["symbol"] == "WIDEUSDT" and rows[0]["status"] == "breach"


# Addresses the vendored Plotly may hold: XML namespaces, licence and comment links, the Plotly logo's link
# (a link, shown only with displaylogo, which the pages turn off) and a documentation link in an error message.
NOT_LOADED = re.compile(r"https?://(www\.w3\.org/|github\.com/|getify\.mit-license\.org|syntheti\.cc|plotly\.com/(javascript/animations/)?$)")


@pytest.mark.django_db(False)
def test_the_vendored_plotly_names_no_host_to_load_from():
    """Served from static/ with its internet defaults (topojsonURL, plotlyServerURL) emptied by
    scripts/vendor_plotly.py: the pages work where the internet is out of reach."""
    bundle = (Path(__file__).resolve().parents[2] / "static" / "vendor" / "plotly-finance.min.js").read_text()
    addresses = set(re.findall(r"https?://[\w./?=&%:-]+", bundle))
    assert addresses and not {a for a in addresses if not NOT_LOADED.match(a)}


def test_market_page_and_its_apis(client, viewer):
    m = make_market()
    write_samples([sample(m.id, utcnow().replace(microsecond=0) - timedelta(seconds=2))])
    client.force_login(viewer)
    page = client.get(f"/markets/{m.id}/")
    assert page.status_code == 200 and b"vendor/plotly-finance.min.js" in page.content
    live = client.get(f"/api/markets/{m.id}/live/?seconds=10").json()
    assert len(live["ts"]) == 10 and live["spread_pct"].count(None) >= 8
    state = client.get(f"/api/markets/{m.id}/state/").json()
    assert state["row"]["uptime"] == {"status": "unknown", "required_pct": 98.0, "judged": False}  # engine not run yet
    assert state["book"]["bids"] is None
    # Judged now by the engine: no minute bar was rolled up, so every closed minute today is unknown.
    assert {m["outcome"] for m in state["uptime_today"]["minutes"]} <= {"unknown"}
    assert state["api_health"]["total"] == 0 and state["api_health"]["clock"] == []


def test_api_health_csv_is_for_operators(client, viewer, operator):
    from collectors.models import ApiResponse

    m = make_market()
    ApiResponse.objects.create(venue=m.venue, at=utcnow() - timedelta(minutes=5), method="GET", path="/api/v3/depth",
                               http_status=429, latency_ms=12.5, retry_after_s=3)
    ApiResponse.objects.create(venue=m.venue, at=utcnow() - timedelta(hours=25), method="GET", path="/api/v3/old",
                               http_status=200, latency_ms=1.0)
    client.force_login(viewer)
    assert client.get("/api/api-health/export-24h.csv").status_code == 403
    assert b"export-24h.csv" not in client.get(f"/markets/{m.id}/").content
    client.force_login(operator)
    assert b"export-24h.csv" in client.get(f"/markets/{m.id}/").content
    response = client.get("/api/api-health/export-24h.csv")
    lines = response.content.decode().splitlines()
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert lines[0].startswith("at,venue,method,path,http_status") and len(lines) == 2  # the 25 h old one is out
    assert "/api/v3/depth,429" in lines[1]


def test_unknown_market_and_bad_dates_get_clear_errors(client, viewer):
    m = make_market()
    client.force_login(viewer)
    page = client.get("/markets/999999/")
    assert page.status_code == 404 and b"no market with id 999999" in page.content
    response = client.get(f"/api/markets/{m.id}/history/?start=2024-13-45")
    assert response.status_code == 400 and "not a date" in response.json()["error"]
    response = client.get(f"/api/markets/{m.id}/live/?seconds=lots")
    assert response.status_code == 400
    assert client.get("/api/markets/999999/history/").status_code == 404


def test_viewer_sees_obligations_but_cannot_edit(client, viewer):
    m = make_market()
    client.force_login(viewer)
    page = client.get(f"/obligations/{m.id}/")
    assert page.status_code == 200 and b"Save a new version" not in page.content
    assert client.post(f"/obligations/{m.id}/", EDIT).status_code == 403
    assert ObligationVersion.objects.filter(market=m).count() == 1


def test_operator_cannot_edit_either(client, operator):
    m = make_market()
    client.force_login(operator)
    assert client.post(f"/obligations/{m.id}/", EDIT).status_code == 403


def test_admin_edit_records_a_version_with_who_and_why(client, admin):
    m = make_market()
    client.force_login(admin)
    assert b"Save a new version" in client.get(f"/obligations/{m.id}/").content
    response = client.post(f"/obligations/{m.id}/", EDIT, follow=True)
    assert response.status_code == 200 and b"Saved version 2" in response.content
    v = ObligationVersion.objects.get(market=m, version=2)
    assert v.changed_by == admin and v.reason == "MMA amendment 3, clause 4.2" and str(v.spread_max_pct) == "0.7000"
    assert b"MMA amendment 3" in response.content  # in the change log


def test_impossible_obligation_is_rejected_with_a_clear_message(client, admin):
    m = make_market()
    client.force_login(admin)
    response = client.post(f"/obligations/{m.id}/", {**EDIT, "spread_target_max_pct": "0.9"})
    assert response.status_code == 400
    assert b"cannot be above the maximum permitted" in response.content
    response = client.post(f"/obligations/{m.id}/", {**EDIT, "depth_min_usd": "-5"})
    assert b"Minimum depth cannot be negative" in response.content
    response = client.post(f"/obligations/{m.id}/", {**EDIT, "reason": ""})
    assert response.status_code == 400 and b"This field is required" in response.content
    assert ObligationVersion.objects.filter(market=m).count() == 1
