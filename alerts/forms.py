"""Forms for rules, channels, routes, acknowledgements and mutes; messages say what to fix."""
from django import forms

from .models import AlertRule, Channel, Route
from .transports import TRANSPORTS


class RuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ("threshold", "severity", "for_seconds", "clear_seconds", "renotify_seconds", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Let our own checks below speak rather than the field's generic minimum.
        for name in ("for_seconds", "clear_seconds", "renotify_seconds"):
            self.fields[name] = forms.IntegerField(label=self.fields[name].label, help_text=self.fields[name].help_text)

    def clean_threshold(self):
        value = self.cleaned_data["threshold"]
        if value is not None and value < 0:
            raise forms.ValidationError("A threshold cannot be negative; leave it empty to follow the obligation.")
        return value

    def _seconds(self, name, label, minimum=0):
        value = self.cleaned_data[name]
        if value < minimum:
            if minimum == 0:
                raise forms.ValidationError(f"{label} cannot be negative (got {value} s).")
            raise forms.ValidationError(f"{label} must be at least {minimum} s (got {value} s), or alerts would spam.")
        return value

    def clean_for_seconds(self):
        return self._seconds("for_seconds", "The duration before firing")

    def clean_clear_seconds(self):
        return self._seconds("clear_seconds", "The duration before resolving")

    def clean_renotify_seconds(self):
        return self._seconds("renotify_seconds", "The re-notify interval", minimum=60)


class ChannelForm(forms.ModelForm):
    """Name and switches; the kind's own settings come from its transport's config form."""

    class Meta:
        model = Channel
        fields = ("name", "enabled", "daily_digest")

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        initial = self.instance.config if self.instance.pk else None
        self.config_form = TRANSPORTS[kind].config_form(self.data or None, initial=initial, prefix="config")

    def is_valid(self):
        return all([super().is_valid(), self.config_form.is_valid()])

    def save_values(self) -> Channel:
        channel = self.instance
        channel.kind = self.kind
        channel.config = self.config_form.config()
        return channel


class RouteForm(forms.ModelForm):
    class Meta:
        model = Route
        fields = ("venue", "market", "rule_kind", "min_severity")

    def clean(self):
        data = super().clean()
        market, venue = data.get("market"), data.get("venue")
        if market and venue and market.venue_id != venue.pk:
            raise forms.ValidationError(f"{market} is not on {venue}; pick one or the other.")
        return data


class AcknowledgeForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                           error_messages={"required": "Say what is being done about it; the note goes into the audit trail."})


class MuteForm(forms.Form):
    minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, initial=60,
                                 error_messages={"min_value": "Mute for at least one minute.",
                                                 "max_value": "Mute for at most a week; a longer silence should be a rule change."})
    note = forms.CharField(required=False, max_length=500)


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any status"), ("pending", "pending"), ("firing", "firing"), ("resolved", "resolved")])
    severity = forms.ChoiceField(required=False, choices=[("", "any severity"), ("warning", "warning"), ("critical", "critical"), ("info", "info")])
    market = forms.IntegerField(required=False, widget=forms.HiddenInput)
    kind = forms.CharField(required=False, widget=forms.HiddenInput)
