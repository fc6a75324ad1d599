"""The dashboard as a person uses it: headless Chromium (Debian's) against uvicorn on the test database."""
import os
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from compliance.models import ExchangeIndicator, OwnOrder

from .browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, AsgiServer, Publisher, login
from .conftest import clear_samples, sample, user_with_role, utcnow, write_book, write_samples
from .conftest import make_market as make_market_since_2020

# Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls are
# still plain synchronous code between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SOAK_SECONDS = int(os.environ.get("DASHBOARD_SOAK_SECONDS", "10"))


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings

    srv = AsgiServer(settings.DATABASES["default"]["NAME"], tmp_path_factory.mktemp("static"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def publisher():
    pub = Publisher()
    yield pub
    pub.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture(autouse=True)
def fresh_tables():
    from django.core.cache import cache

    clear_samples()
    cache.clear()  # verdicts are cached per minute, keyed by ids that a flushed test database reuses
    yield
    clear_samples()


def make_market(symbol, **kw):
    """Under obligation from now on: the day's earlier minutes are not owed (else they count as unknown)."""
    return make_market_since_2020(symbol, effective_from=utcnow() - timedelta(seconds=1), **kw)


def judged_market(symbol, spread, **kw):
    """Under obligation for the last two closed minutes, with samples in them, rolled up and
    judged by the engine as beat would: today's uptime is known."""
    from compliance import judging
    from compliance.rollups import floor_minute, roll_up

    now = utcnow()
    since = floor_minute(now) - timedelta(minutes=2)
    m = make_market_since_2020(symbol, effective_from=since, venue_name=kw.pop("venue_name", "Binance spot"),
                               tier=kw.pop("tier", 1))
    write_samples([sample(m.id, since + timedelta(seconds=s), spread=spread, **kw) for s in range(0, 120, 10)])
    roll_up(start=since, end=now, market_ids=[m.id])
    judging.judge_day(market=m, day=now.date(), now=now)
    return m


def live_payload(market_id, spread, **kw):
    s = sample(market_id, utcnow(), spread=spread, **kw)
    return {**s, "ts": s["ts"].isoformat()}


def test_overview_shows_each_market_with_the_right_status(server, page, django_user_model, publisher):
    ok, wide, quiet = judged_market("OKUSDT", 0.05), judged_market("WIDEUSDT", 1.1), make_market("QUIETUSDT")
    thin = judged_market("THINUSDT", 0.6, venue_name="Bybit spot", tier=2, bid_usd=4_000, ask_usd=4_000, complete=False)
    now = utcnow()
    write_samples([sample(ok.id, now), sample(wide.id, now, spread=1.1),
                   sample(thin.id, now, spread=0.6, bid_usd=4_000, ask_usd=4_000, complete=False)])
    user_with_role(django_user_model, "vera-viewer", "viewer")
    login(page, server.url, "vera-viewer", "pw-vera-viewer-123")
    page.wait_for_selector("body[data-ready='1']")
    row = lambda m: page.locator(f"tr[data-market-id='{m.id}']")  # noqa: E731
    assert row(wide).get_attribute("data-status") == "breach"
    assert "Breach" in row(wide).inner_text() and "max 0.8 %" in row(wide).inner_text()
    assert row(thin).get_attribute("data-status") == "breach"
    assert "lower bound" in row(thin).inner_text()
    assert "STALE" in row(quiet).inner_text() or "NO DATA" in row(quiet).inner_text()
    # keep the live ones fresh while the screenshot is taken
    for m, spread in ((ok, 0.05), (wide, 1.1)):
        publisher.publish(live_payload(m.id, spread))
    page.wait_for_selector(f"#conn[data-state='live']")
    page.wait_for_selector(f"tr[data-market-id='{ok.id}'][data-status='ok']")
    assert "100.00 %" in row(ok).inner_text()  # the engine's uptime so far: 2 of 2 minutes
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    # filters: status and search
    page.select_option("select[name=status]", "breach")
    assert page.locator("tbody tr[data-market-id]").count() == 2
    page.select_option("select[name=status]", "")
    page.fill("input[name=q]", "quiet")
    assert page.locator("tbody tr[data-market-id]").count() == 1


# How many spread points the market page's live figure shows (trace 0 is the spread).
SPREAD_POINTS = "() => document.getElementById('chart-live').data[0].y.filter(v => v != null).length"


def open_market_page(page, server, django_user_model, market, username):
    """Logged in as a viewer on the market's page, its socket live and its panels loaded."""
    user_with_role(django_user_model, username, "viewer")
    login(page, server.url, username, f"pw-{username}-123")
    page.goto(f"{server.url}/markets/{market.id}/")
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_selector("body[data-ready='1']")


def busy_market(symbol):
    """A market with two minutes of samples, a book, the desk's orders (one cancelled) and two
    exchange-reported indicators, one of them locked: every panel of its page has something to draw."""
    m = make_market(symbol)
    now = utcnow().replace(microsecond=0)
    write_samples([sample(m.id, now - timedelta(seconds=s), spread=0.05 + s * 0.001) for s in range(1, 120)])
    write_book(m.id, now - timedelta(seconds=1), bids=[(99.95 - i * 0.1, 5 + i) for i in range(40)],
               asks=[(100.0 + i * 0.1, 4 + i) for i in range(40)])
    for order_id, side, price in ((1, "BUY", 99.75), (2, "SELL", 100.3), (3, "SELL", 100.8)):
        OwnOrder.objects.create(market=m, order_id=order_id, side=side, order_type="LIMIT", time_in_force="GTC",
                                price=price, orig_qty=3, status="NEW", placed_at=now, updated_at=now)
    OwnOrder.objects.create(market=m, order_id=4, side="BUY", order_type="LIMIT", time_in_force="GTC", price=99,
                            orig_qty=1, status="CANCELED", placed_at=now, updated_at=now, closed_at=now)
    ExchangeIndicator.objects.create(venue=m.venue, market=m, indicator="UFR", value=0.91, trigger_value=0.995,
                                     observed_at=now)
    ExchangeIndicator.objects.create(venue=m.venue, market=m, indicator="GCR", value=0.995, trigger_value=0.99,
                                     is_locked=True, planned_recover_time=now + timedelta(minutes=12), observed_at=now)
    return m


def test_market_page_spread_chart_gains_points_live(server, page, django_user_model, publisher):
    m = busy_market("LIVEUSDT")
    open_market_page(page, server, django_user_model, m, "vera-viewer")
    page.wait_for_function(f"({SPREAD_POINTS})() >= 100")
    before = page.evaluate(SPREAD_POINTS)
    for i in range(4):
        publisher.publish(live_payload(m.id, 0.45 + i * 0.1))
        time.sleep(1.0)
    page.wait_for_function(f"({SPREAD_POINTS})() >= {before + 3}", timeout=5000)
    assert "Warning" in page.inner_text("#card-spread")  # 0.75 % is above 90 % of the 0.8 % maximum
    assert "LOCKED" in page.inner_text("#indicators") and "Breach" in page.inner_text("#card-behaviour")
    assert page.evaluate("document.getElementById('chart-book').data.map(t => t.name)") == [
        "bids (cumulative USD)", "asks (cumulative USD)", "own bids", "own asks"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "market.png"), full_page=True)


def test_pages_reach_nothing_but_this_server(server, page, django_user_model, publisher):
    """The product works offline: Plotly and every other asset come from static/, so no page asks another
    host for anything, whatever it draws (live figure, book, gauges, history mode, the overview)."""
    outside = []

    def only_this_server(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    m = busy_market("HOMEUSDT")
    open_market_page(page, server, django_user_model, m, "olga-viewer")
    page.wait_for_selector("#gauges .gauge")
    page.wait_for_function(f"({SPREAD_POINTS})() >= 119")  # the live window loaded: live points extend it
    for i in range(3):  # three live seconds, as in the live test
        publisher.publish(live_payload(m.id, 0.2 + i * 0.1))
        time.sleep(1.0)
    page.wait_for_function(f"({SPREAD_POINTS})() >= 121", timeout=5000)
    page.click("button[name=load]")  # history mode: minute bars in the same figure
    page.wait_for_function("() => document.getElementById('mode').textContent.startsWith('History')")
    page.goto(f"{server.url}/")
    page.wait_for_selector("#conn[data-state='live']")
    assert outside == []


def test_a_hidden_market_page_draws_nothing_and_resyncs_when_shown(server, page, django_user_model, publisher):
    """A background tab skips the live redraws (a wall of pages shares a machine's cores); shown again, it
    reloads the live window from the server, so the seconds it skipped are drawn as data, not as a gap."""
    m = make_market("HIDEUSDT")
    now = utcnow().replace(microsecond=0)
    write_samples([sample(m.id, now - timedelta(seconds=s)) for s in range(1, 60)])
    open_market_page(page, server, django_user_model, m, "hana-viewer")
    page.wait_for_function(f"({SPREAD_POINTS})() >= 59")
    # The browser tells a page it is hidden through document.hidden and a visibilitychange event.
    page.evaluate("""() => { window.__hidden = true;
        Object.defineProperty(document, "hidden", {configurable: true, get: () => window.__hidden});
        document.dispatchEvent(new Event("visibilitychange")); }""")
    before = page.evaluate(SPREAD_POINTS)
    for i in range(3):  # stored and published, as the collector does
        s = sample(m.id, utcnow().replace(microsecond=0), spread=0.3 + i * 0.1)
        write_samples([s])
        publisher.publish({**s, "ts": s["ts"].isoformat()})
        time.sleep(1.0)
    page.wait_for_function("() => document.getElementById('card-spread').textContent.includes('0.500 %')", timeout=5000)
    assert page.evaluate(SPREAD_POINTS) == before  # the cards follow; the chart was not redrawn
    with page.expect_response(lambda r: "/live/" in r.url):
        page.evaluate("""() => { window.__hidden = false; document.dispatchEvent(new Event("visibilitychange")); }""")
    page.wait_for_function(f"({SPREAD_POINTS})() >= {before + 3}", timeout=5000)
    spreads = page.evaluate("document.getElementById('chart-live').data[0].y.filter(v => v != null).slice(-3)")
    assert spreads == pytest.approx([0.3, 0.4, 0.5])


def thirty_stored_seconds(page, server, django_user_model, symbol, username):
    """A market whose last 30 seconds up to now are stored, and a viewer logged in (not yet on its page)."""
    m = make_market(symbol)
    now = utcnow().replace(microsecond=0)
    write_samples([sample(m.id, now - timedelta(seconds=s)) for s in range(1, 31)])
    user_with_role(django_user_model, username, "viewer")
    login(page, server.url, username, f"pw-{username}-123")
    return m, now


def publish_sample(publisher, market_id, ts, spread):
    s = sample(market_id, ts, spread=spread)
    publisher.publish({**s, "ts": s["ts"].isoformat()})


def test_live_updates_arriving_during_a_resync_are_kept(server, page, django_user_model, publisher):
    """On (re)connect the page reloads its live window from the store, which the collector writes after it
    publishes: a second published meanwhile is drawn in the reloaded window (which has nothing for it yet),
    not drawn and then wiped by it, leaving a gap where the page had the data."""
    m, now = thirty_stored_seconds(page, server, django_user_model, "SYNCUSDT", "sara-viewer")
    held = []

    def publish_while_loading(route):  # the first window load: a live second arrives before its answer
        if not held:
            held.append(route.request.url)
            time.sleep(1.0)  # the socket's subscription is in place before it opened; its first load is done
            publish_sample(publisher, m.id, now, 0.7)  # the second after the stored ones: published, not yet stored
            time.sleep(1.5)
        route.continue_()

    page.route("**/live/**", publish_while_loading)
    page.goto(f"{server.url}/markets/{m.id}/")
    page.wait_for_function(f"({SPREAD_POINTS})() >= 31", timeout=10000)
    x, y = page.evaluate("(({x, y}) => [x, y])(document.getElementById('chart-live').data[0])")
    at = x.index(now.timestamp() * 1000)
    assert y[at] == pytest.approx(0.7)  # the published second
    assert None not in y[at - 30:at]  # after the 30 stored ones
    assert len(held) == 1


def test_the_second_the_window_was_read_in_is_drawn_when_it_comes(server, page, django_user_model, publisher):
    """The live window runs to the second the server read it in, whose sample is published later (and stored
    later still): that second is drawn when the socket brings it, not left as a gap at the window's end."""
    m, _ = thirty_stored_seconds(page, server, django_user_model, "LASTUSDT", "lars-viewer")
    read_in = []

    def early_in_a_second(route):  # so that the server reads the window in the second noted here
        time.sleep(1.05 - time.time() % 1)
        read_in.append(int(time.time()))
        route.continue_()

    page.route("**/live/**", early_in_a_second)
    page.goto(f"{server.url}/markets/{m.id}/")
    page.wait_for_function(f"({SPREAD_POINTS})() >= 30")
    publish_sample(publisher, m.id, datetime.fromtimestamp(read_in[0], timezone.utc), 0.9)
    page.wait_for_function("() => document.getElementById('chart-live').data[0].y.some(v => Math.abs(v - 0.9) < 1e-9)",
                           timeout=5000)


def test_operator_sees_a_breach_appear_without_reloading(server, page, django_user_model, publisher):
    m = make_market("TURNUSDT")
    write_samples([sample(m.id, utcnow())])
    user_with_role(django_user_model, "otto-operator", "operator")
    login(page, server.url, "otto-operator", "pw-otto-operator-123")
    page.wait_for_selector("#conn[data-state='live']")
    page.evaluate("window.__sameDocument = true")
    publisher.publish(live_payload(m.id, 0.05))
    page.wait_for_selector(f"tr[data-market-id='{m.id}'] .s-ok")
    publisher.publish(live_payload(m.id, 2.5))
    page.wait_for_selector(f"tr[data-market-id='{m.id}'][data-status='breach']", timeout=5000)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened


def test_viewer_cannot_reach_admin_edits(server, page, django_user_model):
    m = make_market("EDITUSDT")
    user_with_role(django_user_model, "vera-viewer", "viewer")
    login(page, server.url, "vera-viewer", "pw-vera-viewer-123")
    page.goto(f"{server.url}/obligations/{m.id}/")
    assert page.locator("text=Change log").count() == 1
    assert page.locator("form.obligation").count() == 0
    status = page.evaluate(
        """async (url) => {
            const csrf = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            const body = new URLSearchParams({csrfmiddlewaretoken: csrf, reason: 'sneaky', spread_max_pct: '9'});
            return (await fetch(url, {method: 'POST', body})).status;
        }""",
        f"{server.url}/obligations/{m.id}/",
    )
    assert status == 403
    page.goto(f"{server.url}/admin/")
    assert "/admin/login/" in page.url  # not staff: Django's admin refuses


def _heap_mb(page) -> float:
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"]
    cdp.detach()
    return used / 1e6


def _soak(server, browser, django_user_model, publisher, seconds):
    markets = [make_market(f"SOAK{i}USDT") for i in range(20)]
    user_with_role(django_user_model, "vera-viewer", "viewer")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    overview, market = context.new_page(), context.new_page()
    login(overview, server.url, "vera-viewer", "pw-vera-viewer-123")
    market.goto(f"{server.url}/markets/{markets[0].id}/")
    for p in (overview, market):
        p.wait_for_selector("#conn[data-state='live']")

    def tick(i):
        for m in markets:
            publisher.publish(live_payload(m.id, 0.05 + (i % 30) * 0.03))

    for i in range(5):  # warm-up: charts and rows exist before the first measurement
        tick(i)
        time.sleep(1)
    start = {"overview": _heap_mb(overview), "market": _heap_mb(market)}
    end_at, i = time.monotonic() + seconds, 5
    while time.monotonic() < end_at:
        tick(i)
        i += 1
        time.sleep(1)
    end = {"overview": _heap_mb(overview), "market": _heap_mb(market)}
    points = market.evaluate("document.getElementById('chart-live').data[0].x.length")
    context.close()
    print(f"soak {seconds}s JS heap MB start={start} end={end} spread points={points}")
    for name in start:
        # The spread window holds at most 900 points; anything beyond a few MB would be a leak.
        assert end[name] < start[name] + 15, f"{name} heap grew from {start[name]:.1f} to {end[name]:.1f} MB"
    assert points <= 900


def test_soak_short(server, browser, django_user_model, publisher):
    _soak(server, browser, django_user_model, publisher, SOAK_SECONDS)


@pytest.mark.slow
@pytest.mark.timeout(900)  # ten minutes of live updates, plus the set-up (pytest.ini's default is 300 s)
def test_soak_ten_minutes(server, browser, django_user_model, publisher):
    _soak(server, browser, django_user_model, publisher, 600)
