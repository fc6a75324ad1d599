from datetime import timezone

from django import forms
from django.core.exceptions import ValidationError

from compliance.models import Market, Venue

from .models import PeriodKind, Scope
from .periods import InvalidPeriod, period_for


class ReportRequestForm(forms.Form):
    scope = forms.ChoiceField(choices=Scope.choices, initial=Scope.MARKET)
    market = forms.ModelChoiceField(queryset=Market.objects.select_related("venue"), required=False)
    venue = forms.ModelChoiceField(queryset=Venue.objects.all(), required=False)
    period_kind = forms.ChoiceField(choices=PeriodKind.choices, initial=PeriodKind.DAY, label="Period")
    day = forms.DateField(required=False, help_text="Any date inside the day, week or month (UTC).",
                          widget=forms.DateInput(attrs={"type": "date"}))
    start = forms.DateTimeField(required=False, help_text="Range start, UTC (whole minute).",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = forms.DateTimeField(required=False, help_text="Range end, UTC (whole minute, exclusive).",
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope == Scope.MARKET and not data.get("market"):
            self.add_error("market", "Choose the market to report on.")
        if scope == Scope.VENUE and not data.get("venue"):
            self.add_error("venue", "Choose the venue to report on.")
        utc = lambda v: None if v is None else v.replace(tzinfo=timezone.utc)  # noqa: E731 — the form speaks UTC
        try:
            data["period"] = period_for(data.get("period_kind"), day=data.get("day"), start=utc(data.get("start")), end=utc(data.get("end")))
        except InvalidPeriod as exc:
            raise ValidationError(str(exc)) from None
        return data


class SubscriptionForm(forms.Form):
    scope = forms.ChoiceField(choices=Scope.choices, initial=Scope.DESK)
    market = forms.ModelChoiceField(queryset=Market.objects.select_related("venue"), required=False)
    venue = forms.ModelChoiceField(queryset=Venue.objects.all(), required=False)
    email = forms.EmailField(required=False, help_text="Empty = your account's address.")
    daily = forms.BooleanField(required=False, initial=True)
    monthly = forms.BooleanField(required=False, initial=True)

    def clean(self):
        data = super().clean()
        if data.get("scope") == Scope.MARKET and not data.get("market"):
            self.add_error("market", "Choose the market.")
        if data.get("scope") == Scope.VENUE and not data.get("venue"):
            self.add_error("venue", "Choose the venue.")
        if not (data.get("daily") or data.get("monthly")):
            raise ValidationError("Subscribe to the daily reports, the monthly ones, or both.")
        return data
