from django import forms
from django.forms.models import fields_for_model

from compliance.models import TERM_FIELDS, ObligationVersion


class ObligationForm(forms.Form):
    """Every obligation term, plus who-changed-it's reason; the service validates coherence and records the version."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the terms change (e.g. 'MMA amendment 2025-03, clause 4.2'); kept in the change log.",
    )
    effective_from = forms.DateTimeField(
        required=False, help_text="UTC, YYYY-MM-DD HH:MM; empty = now. A version never rewrites the past it did not govern.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {**fields_for_model(ObligationVersion, fields=TERM_FIELDS), **self.fields}

    def terms(self) -> dict:
        return {name: self.cleaned_data[name] for name in TERM_FIELDS}
