"""What the collectors store besides the time series: the API-health log and exchange credentials."""
from django.db import models

from compliance.models import Venue


class ApiResponse(models.Model):
    """One REST response from an exchange, as the API-health record (DESIGN.md, 'Order behaviour').

    The weight and order-count headers are what Binance counts against our limits
    (reference/binance-api/binance_spot_api_docs_rest_api_limits.md).
    """

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(db_index=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=200)
    http_status = models.PositiveSmallIntegerField(help_text="0 when no response arrived (timeout, refused).")
    error_code = models.IntegerField(null=True, blank=True, help_text="Binance's `code` in an error body, e.g. -1021.")
    used_weight_1m = models.PositiveIntegerField(null=True, blank=True, help_text="X-MBX-USED-WEIGHT-1M")
    order_counts = models.JSONField(default=dict, blank=True, help_text="X-MBX-ORDER-COUNT-* headers, e.g. {'10S': 3}.")
    retry_after_s = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["venue", "http_status", "at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.method} {self.path} {self.http_status}"


class ExchangeCredential(models.Model):
    """An exchange API key. The secret is encrypted at rest (collectors.secrets) and never shown again.

    `can_withdraw` comes from GET /sapi/v1/account/apiRestrictions at save time: a monitoring
    key needs read access only, so a key that can withdraw is flagged.
    """

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="credentials")
    label = models.CharField(max_length=64)
    api_key = models.CharField(max_length=128)
    secret_encrypted = models.TextField(editable=False)
    can_withdraw = models.BooleanField(null=True, editable=False, help_text="Empty until the key has been checked.")
    restrictions = models.JSONField(default=dict, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_error = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["venue", "label"]
        constraints = [models.UniqueConstraint(fields=["venue", "label"], name="credential_unique_label")]

    def __str__(self):
        return f"{self.venue.name}: {self.label} ({self.masked_key})"

    @property
    def masked_key(self) -> str:
        return f"{self.api_key[:4]}…{self.api_key[-4:]}" if len(self.api_key) > 8 else "…"

    def secret(self) -> str:
        from collectors.secrets import decrypt

        return decrypt(self.secret_encrypted)
