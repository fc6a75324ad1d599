from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone

from collectors import api_health
from collectors.models import ApiResponse, ExchangeCredential
from collectors.secrets import store_credential


class CredentialForm(forms.ModelForm):
    """The secret is write-only: never rendered back; left empty on edit it keeps the stored one."""

    secret = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False, strip=True)

    class Meta:
        model = ExchangeCredential
        fields = ["venue", "label", "api_key", "is_active"]

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("secret"):
            self.add_error("secret", "Enter the API secret.")
        return data

    def save(self, commit=True):
        secret = self.cleaned_data.get("secret")
        cred = self.instance
        if secret:
            # Encrypts, checks apiRestrictions (flags a key that can withdraw) and saves.
            cred = store_credential(
                venue=self.cleaned_data["venue"], label=self.cleaned_data["label"],
                api_key=self.cleaned_data["api_key"], secret=secret, credential=cred,
            )
            cred.is_active = self.cleaned_data["is_active"]
            cred.save(update_fields=["is_active"])
            return cred
        return super().save(commit=commit)

    def save_m2m(self):  # the admin calls it after save(commit=False); there are no m2m fields
        pass


@admin.register(ExchangeCredential)
class ExchangeCredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ("venue", "label", "masked_key", "can_withdraw", "checked_at", "check_error", "is_active")
    readonly_fields = ("can_withdraw", "restrictions", "checked_at", "check_error")

    def get_fields(self, request, obj=None):
        return ["venue", "label", "api_key", "secret", "is_active", *self.readonly_fields]

    @admin.display(description="API key")
    def masked_key(self, obj):
        return obj.masked_key

    def save_form(self, request, form, change):
        return form.instance  # saved once, in save_model: store_credential calls the exchange

    def save_model(self, request, obj, form, change):
        cred = form.save()
        if cred.can_withdraw:
            messages.warning(request, f"{cred}: this key can WITHDRAW funds. A monitoring key needs read access only; "
                                      "replace it with a key without withdrawal permission.")
        elif cred.can_withdraw is None and cred.check_error:
            messages.warning(request, f"{cred}: the key's permissions could not be checked ({cred.check_error}).")


@admin.register(ApiResponse)
class ApiResponseAdmin(admin.ModelAdmin):
    list_display = ("at", "venue", "method", "path", "http_status", "error_code", "used_weight_1m", "latency_ms")
    list_filter = ("venue", "http_status", "error_code")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("export-24h.csv", self.admin_site.admin_view(self.export_csv), name="collectors_apiresponse_export")] + super().get_urls()

    def export_csv(self, request):
        now = timezone.now()
        response = HttpResponse(api_health.export_csv(now=now), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="api-responses-{now:%Y%m%d-%H%M}.csv"'
        return response
