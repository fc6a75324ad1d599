"""Thin views: parse the form, call a service or selector, render."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from compliance.selectors import active_markets
from dashboard.roles import ADMIN, OPERATOR, role_required

from . import kinds, selectors, services
from .forms import AcknowledgeForm, AlertFilterForm, ChannelForm, MuteForm, RouteForm, RuleForm
from .models import Alert, AlertRule, Channel, Route
from .transports import TRANSPORTS


def alert_list(request):
    form = AlertFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = selectors.alerts(
        status=filters.get("status", ""), severity=filters.get("severity", ""),
        market_id=filters.get("market"), kind=filters.get("kind", ""),
    )
    return render(request, "alerts/list.html", {"form": form, "alerts": rows[:500], "kinds": kinds.KINDS})


def alert_detail(request, alert_id):
    alert = get_object_or_404(Alert.objects.select_related("rule__market__venue", "acknowledged_by"), pk=alert_id)
    return render(request, "alerts/detail.html", {
        "alert": alert, "kind": kinds.KINDS[alert.rule.kind], "events": selectors.history(alert=alert),
        "evaluated_through": selectors.evaluated_through(),
        "ack_form": AcknowledgeForm(), "mute_form": MuteForm(),
    })


def _act(request, alert_id, form_class, action):
    alert = get_object_or_404(Alert, pk=alert_id)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            action(alert, form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("alerts:detail", alert_id=alert.pk)


@require_POST
@role_required(OPERATOR)
def acknowledge(request, alert_id):
    return _act(request, alert_id, AcknowledgeForm,
                lambda alert, data: services.acknowledge(alert=alert, actor=request.user, note=data["note"]))


@require_POST
@role_required(OPERATOR)
def mute(request, alert_id):
    return _act(request, alert_id, MuteForm,
                lambda alert, data: services.mute(alert=alert, actor=request.user, minutes=data["minutes"], note=data["note"]))


@require_POST
@role_required(OPERATOR)
def unmute(request, alert_id):
    services.unmute(alert=get_object_or_404(Alert, pk=alert_id), actor=request.user)
    return redirect("alerts:detail", alert_id=alert_id)


@role_required(ADMIN)
def rule_list(request):
    if request.method == "POST":
        for market in active_markets():
            services.ensure_default_rules(market=market)
        messages.success(request, "Default rules created for every market with an obligation.")
        return redirect("alerts:rules")
    rules = AlertRule.objects.select_related("market__venue").order_by("market__venue__name", "market__symbol", "kind")
    return render(request, "alerts/rules.html", {"rules": rules, "kinds": kinds.KINDS})


@role_required(ADMIN)
def rule_edit(request, rule_id):
    rule = get_object_or_404(AlertRule.objects.select_related("market__venue"), pk=rule_id)
    form = RuleForm(request.POST or None, instance=AlertRule.objects.get(pk=rule.pk))
    if request.method == "POST" and form.is_valid():
        services.update_rule(rule=rule, changes={name: form.cleaned_data[name] for name in RuleForm.Meta.fields}, actor=request.user)
        messages.success(request, f"Rule saved: {rule}.")
        return redirect("alerts:rules")
    return render(request, "alerts/rule_form.html", {"rule": rule, "kind": kinds.KINDS[rule.kind], "form": form})


@role_required(ADMIN)
def channel_list(request):
    return render(request, "alerts/channels.html", {
        "channels": selectors.channels(), "kinds": TRANSPORTS, "route_form": RouteForm(),
    })


@role_required(ADMIN)
def channel_edit(request, channel_id=None, kind=None):
    channel = get_object_or_404(Channel, pk=channel_id) if channel_id else Channel()
    kind = channel.kind if channel_id else kind
    if kind not in TRANSPORTS:
        raise Http404(f"No channel kind {kind!r}.")
    form = ChannelForm(request.POST or None, instance=channel, kind=kind)
    if request.method == "POST" and form.is_valid():
        services.save_channel(channel=form.save_values())
        messages.success(request, f"Channel “{channel.name}” saved.")
        return redirect("alerts:channels")
    return render(request, "alerts/channel_form.html", {"form": form, "kind": kind, "channel": channel})


@require_POST
@role_required(ADMIN)
def channel_test(request, channel_id):
    channel = get_object_or_404(Channel, pk=channel_id)
    services.send_test(channel=channel, actor=request.user)
    # The dispatcher's beat picks it up within ALERTS_DELIVER_EVERY_SECONDS; the outcome shows on this page.
    messages.success(request, f"Test message queued for “{channel.name}”; its outcome shows below within seconds.")
    return redirect("alerts:channels")


@require_POST
@role_required(ADMIN)
def route_add(request, channel_id):
    channel = get_object_or_404(Channel, pk=channel_id)
    form = RouteForm(request.POST, instance=Route(channel=channel))
    if form.is_valid():
        form.save()
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("alerts:channels")


@require_POST
@role_required(ADMIN)
def route_delete(request, route_id):
    get_object_or_404(Route, pk=route_id).delete()
    return redirect("alerts:channels")
