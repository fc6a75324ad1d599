"""Writes for reports: request one, generate it (the pipeline), e-mail it, schedule the closed periods."""
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compliance import rollups
from config.env import envint

from . import builders, evidence, exports, pdf, selectors, storage
from .models import Report, Scope, Status, Trigger
from .periods import Period, closed_day, closed_month, ensure_closed

log = logging.getLogger(__name__)
# A running report whose progress has not moved for this long is taken to have lost its worker
# (a crash, a killed container) and may be claimed again. Progress moves at least once per
# market judged and per output file, each well under a minute even for a month.
LEASE = timedelta(seconds=envint("REPORTS_LEASE_SECONDS", 600))

Progress = Callable[[int, str], None]


def request_report(*, scope: str, period: Period, requested_by=None, market_id: int | None = None, venue_id: int | None = None,
                   trigger: str = Trigger.ON_DEMAND, now: datetime | None = None, enqueue: bool = True) -> Report:
    """Record a report request and queue its generation (after the transaction commits)."""
    ensure_closed(period, now or timezone.now())
    report = Report(scope=scope, market_id=market_id, venue_id=venue_id, period_kind=period.kind, period_start=period.start,
                    period_end=period.end, trigger=trigger, requested_by=requested_by)
    report.full_clean()
    if not selectors.markets_in_scope(scope=scope, market_id=report.market_id, venue_id=report.venue_id):
        raise ValidationError("This scope has no active market to report on.")
    report.save()
    if enqueue:
        from .tasks import generate_report_task

        transaction.on_commit(lambda: generate_report_task.delay(report.pk))
    return report


def produce(*, scope: dict, period: Period, markets, generated_at: datetime, progress: Progress) -> tuple[dict[str, bytes], dict]:
    """The files of one report (PDF, JSON, two CSVs, manifest) and its manifest.

    Everything except the PDF cover and the manifest's 'generated' block depends only on the
    stored data and the inputs' identity, so two runs give the same JSON and CSV bytes.
    """
    # Minutes whose samples arrived since the last roll-up are rolled up first (the engine's
    # dirty-minute queue), so the verdicts read bars that match the stored samples.
    progress(3, "rolling up new samples")
    rollups.roll_up_pending()
    gathered = evidence.gather_all(
        markets, period.start, period.end, now=generated_at,
        progress=lambda done, steps, note: progress(5 + 65 * done // steps, note),
    )
    period_doc = {"kind": period.kind, "label": period.label, "start": builders.iso(period.start),
                  "end": builders.iso(period.end), "minutes": period.minutes}
    document = builders.build_document(scope=scope, period=period_doc, methodology=builders.methodology(gathered), evidence=gathered)
    inputs = exports.inputs_identity(
        period_start=period_doc["start"], period_end=period_doc["end"], markets=[g.market for g in gathered],
        obligation_version_ids=[o["id"] for g in gathered for o in g.obligations],
    )
    document["inputs"] = inputs
    progress(78, "writing JSON and CSV")
    files = {
        "report.json": exports.render_json(document),
        "minute_bars.csv": exports.render_csv(builders.MINUTE_COLUMNS, builders.minute_rows(gathered)),
        "incidents.csv": exports.render_csv(builders.INCIDENT_COLUMNS, builders.incident_rows(gathered)),
    }
    progress(82, "drawing the PDF")
    generated = {"at": builders.iso(generated_at), "product_version": storage.product_version(), "inputs_sha256": inputs["sha256"]}
    files["report.pdf"] = pdf.render_pdf(document=document, evidence=gathered, generated=generated,
                                         period_start=period.start, period_end=period.end)
    manifest = exports.build_manifest(files=files, inputs=inputs, generated=generated)
    files["manifest.json"] = exports.render_json(manifest)
    return files, manifest


def _scope_doc(report: Report) -> dict:
    return {"kind": report.scope, "label": report.scope_label, "market_id": report.market_id, "venue_id": report.venue_id}


class LostLease(RuntimeError):
    """Another worker re-claimed this report after our lease ran out: this run's work is dropped."""


def _set_progress(report_id: int, claim: datetime, percent: int, note: str) -> None:
    # A direct UPDATE, so the page polling it sees progress while generation runs; it also
    # renews the run's lease, and fails once another worker has re-claimed the report.
    renewed = Report.objects.filter(pk=report_id, status=Status.RUNNING, started_at=claim).update(
        progress=percent, progress_note=note[:200], heartbeat_at=timezone.now()
    )
    if not renewed:
        raise LostLease(f"report {report_id} was re-claimed by another run")


def _claimable(now: datetime) -> Q:
    """Queued or failed, or running without progress for longer than the lease (its worker died)."""
    return Q(status__in=(Status.QUEUED, Status.FAILED)) | _stale(now)


def _stale(now: datetime) -> Q:
    cut = now - LEASE
    return Q(status=Status.RUNNING) & (Q(heartbeat_at__lt=cut) | Q(heartbeat_at__isnull=True, started_at__lt=cut))


def generate_report(report_id: int) -> Report:
    """Run the pipeline for a queued report; a failure is recorded on the row, not raised."""
    claim = timezone.now()
    claimed = Report.objects.filter(_claimable(claim), pk=report_id).update(
        status=Status.RUNNING, started_at=claim, heartbeat_at=claim, progress=1, progress_note="starting", error=""
    )
    report = Report.objects.select_related("market__venue", "venue").get(pk=report_id)
    if not claimed:
        log.info("report %s is %s; not generating it again", report_id, report.status)
        return report
    mine = Report.objects.filter(pk=report_id, status=Status.RUNNING, started_at=claim)
    period = Period(report.period_kind, report.period_start, report.period_end)
    try:
        markets = selectors.markets_in_scope(scope=report.scope, market_id=report.market_id, venue_id=report.venue_id)
        if not markets:
            raise ValidationError("This scope has no active market to report on.")
        files, manifest = produce(scope=_scope_doc(report), period=period, markets=markets, generated_at=timezone.now(),
                                  progress=lambda p, note: _set_progress(report_id, claim, p, note))
        directory = storage.report_directory(report.pk, period.label)
        _set_progress(report_id, claim, 95, "storing files")
        storage.write_files(directory, files)
    except LostLease:
        log.warning("report %s: lease lost to another run; dropping this run's work", report_id)
        report.refresh_from_db()
        return report
    except Exception as exc:  # the row must say what went wrong; the worker keeps running
        log.exception("report %s failed", report_id)
        mine.update(status=Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        report.refresh_from_db()
        return report
    mine.update(
        status=Status.DONE, progress=100, progress_note="done", directory=directory, files=manifest["files"],
        inputs_sha256=manifest["inputs"]["sha256"], finished_at=timezone.now(),
    )
    report.refresh_from_db()
    return report


def reclaim_stale_reports(*, now: datetime, enqueue: bool = True) -> list[int]:
    """Reports left 'running' by a worker that died (no progress for longer than the lease):
    queued again, and their generation re-queued. Returns their ids."""
    requeued = []
    for report_id in Report.objects.filter(_stale(now)).values_list("pk", flat=True):
        if Report.objects.filter(_stale(now), pk=report_id).update(
            status=Status.QUEUED, progress=0, progress_note="re-queued: its worker stopped making progress"
        ):
            requeued.append(report_id)
            if enqueue:
                from .tasks import generate_report_task

                transaction.on_commit(lambda pk=report_id: generate_report_task.delay(pk))
    return requeued


def email_report(report: Report) -> int:
    """Send a finished report to its scope's subscribers (PDF and manifest attached); returns how many."""
    if report.status != Status.DONE:
        raise ValidationError(f"Report #{report.pk} is {report.status}; only a finished report is sent.")
    recipients = sorted({s.address for s in selectors.subscribers_for(report)})
    if not recipients:
        return 0
    link = f"{settings.SITE_URL.rstrip('/')}/reports/{report.pk}/"
    body = (
        f"The {report.get_period_kind_display().lower()} audit report for {report.scope_label}, "
        f"{report.period_start:%Y-%m-%d %H:%M} to {report.period_end:%Y-%m-%d %H:%M} UTC, is ready.\n\n"
        f"All files (PDF, JSON, CSV, manifest): {link}\n"
        f"Inputs identity (SHA-256): {report.inputs_sha256}\n"
    )
    message = EmailMessage(subject=f"[LCM] Audit report: {report.scope_label}, {Period(report.period_kind, report.period_start, report.period_end).label}",
                           body=body, to=recipients)
    for name in ("report.pdf", "manifest.json"):
        message.attach(name, storage.file_path(report.directory, name).read_bytes())
    message.send()
    Report.objects.filter(pk=report.pk).update(emailed_at=timezone.now())
    return len(recipients)


def schedule_closed_periods(*, now: datetime) -> list[Report]:
    """At 00:00 UTC: the closed day for the desk and every subscribed scope; on the 1st, the closed month too.

    Idempotent: a scheduled report that already exists for the same scope and period is not requested again.
    """
    periods = [closed_day(now)]
    if now.astimezone(UTC).day == 1:
        periods.append(closed_month(now))
    scopes = [(Scope.DESK, None, None), *selectors.subscribed_scopes()]
    created = []
    for period in periods:
        for scope, market_id, venue_id in dict.fromkeys(scopes):
            exists = Report.objects.filter(trigger=Trigger.SCHEDULED, scope=scope, market_id=market_id, venue_id=venue_id,
                                           period_kind=period.kind, period_start=period.start).exists()
            if exists or not selectors.markets_in_scope(scope=scope, market_id=market_id, venue_id=venue_id):
                continue
            created.append(request_report(scope=scope, period=period, market_id=market_id, venue_id=venue_id,
                                          trigger=Trigger.SCHEDULED, now=now))
    return created
