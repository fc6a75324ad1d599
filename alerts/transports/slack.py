"""Slack incoming webhook: a readable message (market, KPI, value vs limit, since when, link back)."""
import json
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from .base import Message, Transport, post

ICONS = {"firing": ":rotating_light:", "reminder": ":warning:", "resolved": ":white_check_mark:", "test": ":wave:", "digest": ":bar_chart:"}


def parse_webhook_url(raw) -> str:
    url = str(raw or "").strip()
    if not url:
        raise ValidationError("Enter the webhook URL.")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(f"“{url[:80]}” is not a web address; enter the full URL, e.g. https://hooks.slack.com/services/T000/B000/XXXX.")
    return url


class SlackConfigForm(forms.Form):
    url = forms.CharField(label="Incoming webhook URL", max_length=500, error_messages={"required": "Enter the webhook URL."})

    def clean_url(self):
        return parse_webhook_url(self.cleaned_data["url"])

    def config(self) -> dict:
        return {"url": self.cleaned_data["url"]}


@dataclass(frozen=True)
class SlackConfig:
    url: str


def slack_body(message: Message) -> dict:
    lines = [f"{ICONS.get(message.notice, '')} *{message.title}*".strip()]
    if message.market:
        lines.append(f"*Market:* {message.market}   *Severity:* {message.severity}")
    if message.kpi:
        value = "n/a" if message.value is None else f"{message.value:,.4g}"
        limit = "n/a" if message.limit is None else f"{message.limit:,.4g}"
        lines.append(f"*{message.kpi}:* {value} (limit {limit})")
    if message.since:
        label = "Back in range since" if message.notice == "resolved" else "Since"
        lines.append(f"*{label}:* {message.since.replace('T', ' ').replace('+00:00', '')} UTC")
    if message.url:
        lines.append(f"<{message.url}|Open in the monitor>")
    if message.notice in ("test", "digest"):
        lines.append(message.text)
    text = "\n".join(lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


class SlackTransport(Transport):
    kind = "slack"
    config_form = SlackConfigForm

    @classmethod
    def parse_config(cls, config: dict) -> SlackConfig:
        return SlackConfig(url=parse_webhook_url(config.get("url")))

    def send(self, message: Message, *, delivery_id: str) -> None:
        # Slack's incoming webhooks have no idempotency key: a crash after Slack accepted the
        # post and before we recorded it can repeat the message once (see alerts/delivery.py).
        post(self.config.url, json.dumps(slack_body(message)).encode(), {})
