"""What every transport shares: the message, the error classes, and HTTP posting with
a timeout and a status → transient/permanent classification."""
from dataclasses import asdict, dataclass

import requests
from django import forms
from django.conf import settings

from config.env import envfloat

HTTP_TIMEOUT_SECONDS = envfloat("ALERTS_HTTP_TIMEOUT_SECONDS", 10.0)

# A webhook that is gone or refuses us will not heal by retrying (Slack: 404 no_service,
# 410 channel_is_archived, 403 invalid_token; 400 invalid_payload is our bug, not a blip).
PERMANENT_HTTP = frozenset({400, 401, 403, 404, 410})


class DeliveryError(Exception):
    permanent = False

    def __init__(self, message: str, *, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TransientError(DeliveryError):
    """Worth retrying later: timeouts, refused connections, 5xx, 429."""


class PermanentError(DeliveryError):
    """Retrying cannot help; the channel is marked broken until someone fixes it."""

    permanent = True


@dataclass(frozen=True)
class Message:
    """A notice, frozen into the Notification row when it is recorded (JSON-safe fields only)."""

    title: str
    text: str  # plain-text body, several lines
    severity: str
    notice: str  # firing | reminder | resolved | test | digest
    market: str = ""
    kpi: str = ""
    value: float | None = None
    limit: float | None = None
    since: str = ""  # ISO 8601 UTC
    url: str = ""
    fingerprint: str = ""
    episode: int = 0

    def to_payload(self) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict) -> "Message":
        return cls(**payload)


class Transport:
    """One integration. Subclasses state their kind, their settings form, how the stored JSON
    config is checked, and how a message is sent."""

    kind: str
    config_form: type[forms.Form]

    def __init__(self, config: dict):
        self.config = self.parse_config(config)

    @classmethod
    def parse_config(cls, config: dict):
        raise NotImplementedError

    def send(self, message: Message, *, delivery_id: str) -> None:
        """Deliver once or raise DeliveryError. `delivery_id` is stable across retries of one notification."""
        raise NotImplementedError


def post(url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = requests.post(
            url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise TransientError(f"timed out after {HTTP_TIMEOUT_SECONDS:g} s: {exc}") from exc
    except requests.RequestException as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc
    if 200 <= response.status_code < 300:
        return
    reason = f"HTTP {response.status_code}: {response.text[:200].strip()}"
    if response.status_code in PERMANENT_HTTP:
        raise PermanentError(reason)
    retry_after = response.headers.get("Retry-After")
    raise TransientError(reason, retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None)


def site_url(path: str = "") -> str:
    return settings.SITE_URL.rstrip("/") + path
