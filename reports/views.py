"""Report pages: list and request (operators), detail with live progress, downloads, subscriptions.

Login is required everywhere by dashboard.middleware; requesting a report needs the operator role.
"""
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboard.roles import OPERATOR, has_role, role_required

from . import selectors, services, storage
from .forms import ReportRequestForm, SubscriptionForm
from .models import Report, Scope, Subscription

CONTENT_TYPES = {".pdf": "application/pdf", ".json": "application/json", ".csv": "text/csv"}


def report_list(request):
    form = ReportRequestForm() if has_role(request.user, OPERATOR) else None
    return render(request, "reports/list.html", {"form": form, "reports": selectors.recent_reports()})


@require_POST
@role_required(OPERATOR)
def report_request(request):
    form = ReportRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            report = services.request_report(
                scope=data["scope"], period=data["period"], requested_by=request.user,
                market_id=data["market"].pk if data["scope"] == Scope.MARKET else None,
                venue_id=data["venue"].pk if data["scope"] == Scope.VENUE else None,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("reports:detail", pk=report.pk)
    return render(request, "reports/list.html", {"form": form, "reports": selectors.recent_reports()}, status=400)


def report_detail(request, pk: int):
    report = get_object_or_404(Report.objects.select_related("market__venue", "venue", "requested_by"), pk=pk)
    return render(request, "reports/detail.html", {"report": report, "files": sorted(report.files.items()),
                                                   "lease_minutes": int(services.LEASE.total_seconds() // 60)})


def report_progress(request, pk: int):
    report = get_object_or_404(Report, pk=pk)
    return JsonResponse({"status": report.status, "progress": report.progress, "note": report.progress_note, "error": report.error})


def report_file(request, pk: int, name: str):
    report = get_object_or_404(Report, pk=pk)
    if name not in report.files:
        raise Http404("No such file in this report.")
    try:
        path = storage.file_path(report.directory, name)
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    suffix = path.suffix
    return FileResponse(path.open("rb"), as_attachment=suffix != ".pdf", filename=f"report-{report.pk}-{name}",
                        content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"))


def subscriptions(request):
    form = SubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        sub = Subscription(user=request.user, scope=data["scope"], email=data["email"], daily=data["daily"], monthly=data["monthly"],
                           market=data["market"] if data["scope"] == Scope.MARKET else None,
                           venue=data["venue"] if data["scope"] == Scope.VENUE else None)
        sub.full_clean()
        sub.save()
        return redirect("reports:subscriptions")
    mine = Subscription.objects.filter(user=request.user).select_related("market__venue", "venue")
    return render(request, "reports/subscriptions.html", {"form": form, "subscriptions": mine})


@require_POST
def unsubscribe(request, pk: int):
    Subscription.objects.filter(pk=pk, user=request.user).update(is_active=False)
    return redirect("reports:subscriptions")
