"""The notification transports, one module each, in one registry: kind → transport class.

Adding an integration is adding a module and a line here, not editing a switch statement.
"""
from .base import DeliveryError, Message, PermanentError, TransientError, Transport
from .email import EmailTransport
from .slack import SlackTransport
from .webhook import WebhookTransport

TRANSPORTS: dict[str, type[Transport]] = {t.kind: t for t in (EmailTransport, SlackTransport, WebhookTransport)}

__all__ = ["TRANSPORTS", "DeliveryError", "Message", "PermanentError", "TransientError", "Transport"]
