"""Generic webhook: the message as a JSON body, signed with HMAC-SHA256.

Headers: X-LCM-Delivery (stable across retries: receivers de-duplicate on it),
X-LCM-Timestamp (unix seconds) and X-LCM-Signature = "sha256=" + hex HMAC-SHA256(secret,
"<timestamp>." + body), so a receiver can verify the body and reject stale replays.
"""
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError

from .base import Message, Transport, post
from .slack import parse_webhook_url

MIN_SECRET_LENGTH = 16


def parse_secret(raw) -> str:
    secret = str(raw or "")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(f"The signing secret must be at least {MIN_SECRET_LENGTH} characters.")
    return secret


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookConfigForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500, error_messages={"required": "Enter the webhook URL."})
    secret = forms.CharField(
        label="Signing secret", min_length=MIN_SECRET_LENGTH, widget=forms.PasswordInput(render_value=True),
        error_messages={
            "required": "Enter a signing secret.",
            "min_length": f"The signing secret must be at least {MIN_SECRET_LENGTH} characters.",
        },
    )

    def clean_url(self):
        return parse_webhook_url(self.cleaned_data["url"])

    def config(self) -> dict:
        return {"url": self.cleaned_data["url"], "secret": self.cleaned_data["secret"]}


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str


class WebhookTransport(Transport):
    kind = "webhook"
    config_form = WebhookConfigForm

    @classmethod
    def parse_config(cls, config: dict) -> WebhookConfig:
        return WebhookConfig(url=parse_webhook_url(config.get("url")), secret=parse_secret(config.get("secret")))

    def send(self, message: Message, *, delivery_id: str) -> None:
        body = json.dumps({"delivery_id": delivery_id, **message.to_payload()}, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        post(
            self.config.url, body,
            {"X-LCM-Delivery": delivery_id, "X-LCM-Timestamp": timestamp,
             "X-LCM-Signature": signature(self.config.secret, timestamp, body)},
        )
