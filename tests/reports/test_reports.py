"""Report generation end to end: determinism, outages, obligation changes, the PDF, the pages."""
import json
import shutil
import subprocess
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from compliance.services import change_obligation
from reports import services
from reports.builders import MINUTE_COLUMNS
from reports.models import Report, Subscription
from reports.periods import InvalidPeriod, day_period, range_period

from .conftest import DAY, DAY_START, UTC, sample_row, seconds, write_samples

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings.MEDIA_ROOT


def generate(**kwargs) -> Report:
    report = services.request_report(enqueue=False, now=datetime(2030, 1, 1, tzinfo=UTC), **kwargs)
    report = services.generate_report(report.pk)
    assert report.status == "done", report.error
    return report


def stored(report: Report, name: str) -> bytes:
    from reports.storage import file_path

    return file_path(report.directory, name).read_bytes()


def document(report: Report) -> dict:
    return json.loads(stored(report, "report.json"))


def minute_rows(report: Report) -> list[dict]:
    lines = stored(report, "minute_bars.csv").decode().splitlines()
    assert lines[0].split(",") == list(MINUTE_COLUMNS)
    return [dict(zip(MINUTE_COLUMNS, line.split(","))) for line in lines[1:]]


def steady_day(market, *, skip=(), invalid=(), wide=()):
    """A day of 1 s samples at a 0.0999 % spread; `skip` intervals have no rows (collector down),
    `invalid` intervals have invalid rows (book resyncing), `wide` intervals a 0.7 % spread."""
    inside = lambda t, spans: any(lo <= t < hi for lo, hi in spans)  # noqa: E731
    rows = []
    for t in seconds(DAY_START, DAY_START + timedelta(days=1)):
        if inside(t, skip):
            continue
        if inside(t, invalid):
            rows.append(sample_row(market.id, t, 0, 0, valid=False))
        else:
            rows.append(sample_row(market.id, t, 100.0, 100.7 if inside(t, wide) else 100.1))
    write_samples(rows)


def at(h, m=0):
    return DAY_START + timedelta(hours=h, minutes=m)


def test_same_report_twice_gives_identical_csv_and_json(market):
    steady_day(market, skip=[(at(3), at(3, 30))], wide=[(at(10), at(10, 20))])
    first = generate(scope="market", market_id=market.id, period=day_period(DAY))
    second = generate(scope="market", market_id=market.id, period=day_period(DAY))
    for name in ("report.json", "minute_bars.csv", "incidents.csv"):
        assert stored(first, name) == stored(second, name), name
        assert first.files[name]["sha256"] == second.files[name]["sha256"]
    m1, m2 = json.loads(stored(first, "manifest.json")), json.loads(stored(second, "manifest.json"))
    assert m1["numbers_sha256"] == m2["numbers_sha256"]
    assert m1["inputs"] == m2["inputs"] and m1["inputs"]["obligation_version_ids"] == [market.obligation_versions.get().id]
    assert b"generated" not in stored(first, "report.json")  # no generation time in the numbers
    assert len(minute_rows(first)) == 1440


def test_outage_shows_unknown_minutes_and_never_counts_them_compliant(market):
    # 30 minutes without any sample (collector down) and 10 minutes of invalid samples (resync).
    steady_day(market, skip=[(at(3), at(3, 30))], invalid=[(at(5), at(5, 10))])
    report = generate(scope="market", market_id=market.id, period=day_period(DAY))
    total = document(report)["markets"][0]["total"]
    assert total["unknown_minutes"] == 40
    assert total["compliant_minutes"] == 1400
    assert total["uptime_raw_pct"] == pytest.approx(1400 / 1440 * 100, abs=1e-6)
    assert total["coverage_pct"] == pytest.approx((86400 - 40 * 60) / 86400 * 100, abs=1e-6)
    assert total["passed"] is False  # 97.22 % < 98 %
    rows = {r["minute"]: r for r in minute_rows(report)}
    assert rows["2024-08-08T03:15:00Z"]["status"] == "unknown" and rows["2024-08-08T03:15:00Z"]["samples"] == "0"
    assert rows["2024-08-08T05:05:00Z"]["status"] == "unknown" and rows["2024-08-08T05:05:00Z"]["samples"] == "60"
    assert rows["2024-08-08T05:10:00Z"]["status"] == "compliant"
    outages = [i for i in document(report)["markets"][0]["incidents"] if i["kind"] == "outage"]
    assert [(i["start"], i["end"], i["duration_s"]) for i in outages] == [
        ("2024-08-08T03:00:00Z", "2024-08-08T03:30:00Z", 1800), ("2024-08-08T05:00:00Z", "2024-08-08T05:10:00Z", 600)]


def test_period_spanning_an_obligation_change_uses_each_version_for_its_own_minutes(market, admin_user):
    steady_day(market)
    # From noon the target maximum drops below the market's 0.0999 % spread: every later minute fails.
    v2 = change_obligation(market=market, terms={"spread_target_min_pct": Decimal("0.01"), "spread_target_max_pct": Decimal("0.05")},
                           changed_by=admin_user, reason="Tighter spread agreed with the exchange", effective_from=at(12))
    report = generate(scope="market", market_id=market.id, period=day_period(DAY))
    market_doc = document(report)["markets"][0]
    v1_result, v2_result = market_doc["results"]
    assert (v1_result["obligation_version"], v1_result["minutes"], v1_result["compliant_minutes"]) == (1, 720, 720)
    assert (v2_result["obligation_version"], v2_result["minutes"], v2_result["compliant_minutes"]) == (2, 720, 0)
    assert v1_result["passed"] is True and v2_result["passed"] is False
    assert market_doc["total"]["compliant_minutes"] == 720 and market_doc["total"]["passed"] is False
    assert [o["id"] for o in market_doc["obligations"]] == [v2.id - 1, v2.id] or len(market_doc["obligations"]) == 2
    change = market_doc["obligations"][1]
    assert change["reason"] == "Tighter spread agreed with the exchange" and change["changed_by"] == admin_user.username
    assert change["changes_from_previous"]["spread_target_max_pct"] == {"from": 0.5, "to": 0.05}
    rows = {r["minute"]: r for r in minute_rows(report)}
    assert (rows["2024-08-08T11:59:00Z"]["obligation_version"], rows["2024-08-08T11:59:00Z"]["status"]) == ("1", "compliant")
    assert (rows["2024-08-08T12:00:00Z"]["obligation_version"], rows["2024-08-08T12:00:00Z"]["status"]) == ("2", "non_compliant")


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")
def test_pdf_renders_to_png_pages(market, tmp_path):
    steady_day(market, skip=[(at(3), at(3, 30))], wide=[(at(10), at(10, 20))])
    report = generate(scope="market", market_id=market.id, period=day_period(DAY))
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(stored(report, "report.pdf"))
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4  # cover, methodology, the market's terms/results, its charts and tables
    from PIL import Image

    for page in pages:
        with Image.open(page) as image:
            assert image.size[0] > 200 and image.convert("L").getextrema()[0] < 100  # something is drawn on it


def test_period_still_running_is_refused(market):
    with pytest.raises(InvalidPeriod):
        services.request_report(scope="market", market_id=market.id, period=day_period(date(2030, 1, 1)),
                                now=datetime(2030, 1, 1, 12, tzinfo=UTC), enqueue=False)


def test_operator_requests_a_report_and_follows_its_progress(client, django_user_model, market):
    steady_day(market)
    viewer = django_user_model.objects.create_user("vic-viewer", password="pw-viewer-123456")
    viewer.groups.add(Group.objects.get(name="viewer"))
    operator = django_user_model.objects.create_user("olga-operator", password="pw-operator-123456")
    operator.groups.add(Group.objects.get(name="operator"))
    form = {"scope": "market", "market": market.id, "period_kind": "day", "day": "2024-08-08"}

    assert client.get("/reports/").status_code == 302  # login required
    client.force_login(viewer)
    assert client.get("/reports/").status_code == 200
    assert client.post("/reports/request/", form).status_code == 403
    client.force_login(operator)
    bad = client.post("/reports/request/", {**form, "period_kind": "range", "start": "2024-08-08T10:00", "end": "2024-08-08T09:00"})
    assert bad.status_code == 400 and b"before it starts" in bad.content
    response = client.post("/reports/request/", form)
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reports/{report.pk}/"
    assert client.get(f"/reports/{report.pk}/progress/").json()["status"] == "queued"
    services.generate_report(report.pk)  # what the Celery task runs
    progress = client.get(f"/reports/{report.pk}/progress/").json()
    assert (progress["status"], progress["progress"]) == ("done", 100)
    page = client.get(f"/reports/{report.pk}/")
    assert b"minute_bars.csv" in page.content
    download = client.get(f"/reports/{report.pk}/files/report.json")
    assert download.status_code == 200 and json.loads(b"".join(download.streaming_content))["format"] == "lcm.audit-report"
    assert client.get(f"/reports/{report.pk}/files/..%2Fsecret").status_code == 404


def test_midnight_run_reports_the_closed_day_and_month_and_emails_subscribers(market, django_user_model):
    user = django_user_model.objects.create_user("sam", email="sam@desk.example", password="pw-sam-123456")
    Subscription.objects.create(user=user, scope="market", market=market, daily=True, monthly=False)
    write_samples(sample_row(market.id, t, 100.0, 100.1) for t in seconds(datetime(2024, 8, 31, 23, tzinfo=UTC), datetime(2024, 9, 1, tzinfo=UTC)))
    now = datetime(2024, 9, 1, 0, 2, tzinfo=UTC)
    created = services.schedule_closed_periods(now=now)
    assert sorted((r.scope, r.period_kind) for r in created) == [("desk", "day"), ("desk", "month"), ("market", "day"), ("market", "month")]
    assert services.schedule_closed_periods(now=now) == []  # idempotent
    from reports.tasks import generate_report_task

    market_day = next(r for r in created if (r.scope, r.period_kind) == ("market", "day"))
    assert generate_report_task(market_day.pk) == "done"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["sam@desk.example"]
    assert sorted(a[0] for a in mail.outbox[0].attachments) == ["manifest.json", "report.pdf"]
    market_month = next(r for r in created if (r.scope, r.period_kind) == ("market", "month"))
    assert generate_report_task(market_month.pk) == "done"
    assert len(mail.outbox) == 1  # the subscriber asked for daily reports only


def test_range_must_be_whole_minutes():
    with pytest.raises(InvalidPeriod, match="whole minute"):
        range_period(datetime(2024, 8, 8, 10, 0, 30, tzinfo=UTC), datetime(2024, 8, 8, 11, tzinfo=UTC))
