"""Thin doors: parse the request, call a selector (read) or a service (write), render."""
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from collectors import api_health
from compliance.services import change_obligation

from . import health, selectors
from .forms import ObligationForm
from .roles import ADMIN, OPERATOR, has_role, role_required


def healthz(request):
    db_ok, db_detail = health.check_database()
    redis_ok, redis_detail = health.check_redis()
    collectors_ok, collectors_detail = health.check_collectors()
    ok = db_ok and redis_ok and collectors_ok
    body = {
        "status": "ok" if ok else "degraded",
        "database": {"ok": db_ok, "detail": db_detail},
        "redis": {"ok": redis_ok, "detail": redis_detail},
        "collectors": {"ok": collectors_ok, "shards": collectors_detail},
    }
    return JsonResponse(body, status=200 if ok else 503)


def _error_page(request, status: int, message: str):
    return render(request, "dashboard/error.html", {"status": status, "message": message}, status=status)


def _error_json(status: int, message: str):
    return JsonResponse({"error": message}, status=status)


def _market_or_error(request, market_id: int, *, api: bool):
    try:
        return selectors.market(market_id), None
    except selectors.UnknownMarket as exc:
        return None, (_error_json(404, str(exc)) if api else _error_page(request, 404, str(exc)))


# ---------------------------------------------------------------------------- overview


@require_GET
def overview(request):
    now = timezone.now()
    return render(request, "dashboard/overview.html", {
        "table": selectors.overview_table(now=now), "now": now, "stale_after": settings.STALE_AFTER_SECONDS,
    })


@require_GET
def api_overview(request):
    now = timezone.now()
    return JsonResponse({"now": now.isoformat(), **selectors.overview_table(now=now)})


# ---------------------------------------------------------------------------- market page


@require_GET
def market_detail(request, market_id: int):
    now = timezone.now()
    try:
        page = selectors.market_page(market_id, now=now)
    except selectors.UnknownMarket as exc:
        return _error_page(request, 404, str(exc))
    return render(request, "dashboard/market.html", {
        **page, "now": now, "stale_after": settings.STALE_AFTER_SECONDS,
        "window_seconds": selectors.LIVE_WINDOW_SECONDS, "can_export": has_role(request.user, OPERATOR),
    })


@require_GET
def api_market_live(request, market_id: int):
    try:
        seconds = int(request.GET.get("seconds", selectors.LIVE_WINDOW_SECONDS))
    except ValueError:
        return _error_json(400, "seconds must be a whole number.")
    if not 1 <= seconds <= 3600:
        return _error_json(400, "seconds must be between 1 and 3600.")
    try:
        return JsonResponse(selectors.live_series(market_id, now=timezone.now(), seconds=seconds))
    except selectors.UnknownMarket as exc:
        return _error_json(404, str(exc))


@require_GET
def api_market_history(request, market_id: int):
    try:
        start, end = selectors.parse_range(request.GET.get("start"), request.GET.get("end"), now=timezone.now())
        return JsonResponse(selectors.minute_bars(market_id, start=start, end=end, compare=request.GET.get("compare") == "1"))
    except selectors.BadRange as exc:
        return _error_json(400, str(exc))
    except selectors.UnknownMarket as exc:
        return _error_json(404, str(exc))


@require_GET
def api_market_state(request, market_id: int):
    """The slower-moving parts of a market page: the engine's verdicts, today's minutes, book, order behaviour, API health."""
    now = timezone.now()
    m, error = _market_or_error(request, market_id, api=True)
    if error:
        return error
    page = selectors.market_page(m.id, now=now)
    return JsonResponse({
        "now": now.isoformat(),
        "row": page["row"],
        "uptime_today": selectors.uptime_today(m.id, now=now),
        "book": selectors.book_depth(m.id, now=now),
        "behaviour": page["behaviour"],
        "api_health": page["api_health"],
    })


@role_required(OPERATOR)
@require_GET
def api_health_csv(request):
    """Every exchange API response of the last 24 h (collectors.api_health.export_csv), for operators."""
    now = timezone.now()
    response = HttpResponse(api_health.export_csv(now=now), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="api-responses-{now:%Y%m%d-%H%M}.csv"'
    return response


# ---------------------------------------------------------------------------- obligations


@require_GET
def obligations(request):
    return render(request, "dashboard/obligations.html", {"rows": selectors.obligations_table(now=timezone.now())})


@require_http_methods(["GET", "POST"])
def obligation_detail(request, market_id: int):
    m, error = _market_or_error(request, market_id, api=False)
    if error:
        return error
    if request.method == "POST":
        return _obligation_edit(request, m)
    log = selectors.obligation_log(m.id)
    current = selectors.obligations_in_force([m.id], at=timezone.now()).get(m.id)
    form = None
    if has_role(request.user, ADMIN):
        source = current or selectors.tier_preset(m)
        form = ObligationForm(initial=source.terms() if source else None)
    return render(request, "dashboard/obligation.html", {"market": m, "current": current, "log": log, "form": form})


@role_required(ADMIN)
def _obligation_edit(request, market):
    form = ObligationForm(request.POST)
    if form.is_valid():
        try:
            version = change_obligation(
                market=market, terms=form.terms(), changed_by=request.user,
                reason=form.cleaned_data["reason"], effective_from=form.cleaned_data["effective_from"],
            )
        except ValidationError as exc:
            for field, errors in getattr(exc, "message_dict", {None: exc.messages}).items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, f"Saved version {version.version}, in force from {version.effective_from:%Y-%m-%d %H:%M:%S} UTC.")
            return redirect("dashboard:obligation", market_id=market.id)
    log = selectors.obligation_log(market.id)
    current = selectors.obligations_in_force([market.id], at=timezone.now()).get(market.id)
    return render(request, "dashboard/obligation.html",
                  {"market": market, "current": current, "log": log, "form": form}, status=400)
