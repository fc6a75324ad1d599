"""Email through Django's email backend (SMTP in production)."""
import smtplib
import socket
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

from .base import HTTP_TIMEOUT_SECONDS, Message, PermanentError, TransientError, Transport


def parse_recipients(raw) -> list[str]:
    items = raw if isinstance(raw, list) else str(raw or "").replace(";", ",").replace("\n", ",").split(",")
    recipients = [r.strip() for r in items if r and r.strip()]
    if not recipients:
        raise ValidationError("Enter at least one recipient address.")
    bad = []
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(f"Not a valid email address: {', '.join(bad)}.")
    return recipients


class EmailConfigForm(forms.Form):
    recipients = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="One or more addresses, separated by commas or new lines.",
        error_messages={"required": "Enter at least one recipient address."},
    )

    def clean_recipients(self):
        return parse_recipients(self.cleaned_data["recipients"])

    def config(self) -> dict:
        return {"recipients": self.cleaned_data["recipients"]}


@dataclass(frozen=True)
class EmailConfig:
    recipients: list[str]


class EmailTransport(Transport):
    kind = "email"
    config_form = EmailConfigForm

    @classmethod
    def parse_config(cls, config: dict) -> EmailConfig:
        return EmailConfig(recipients=parse_recipients(config.get("recipients")))

    def send(self, message: Message, *, delivery_id: str) -> None:
        email = EmailMessage(
            subject=message.title,
            body=message.text + (f"\n\n{message.url}" if message.url else ""),
            to=self.config.recipients,
            # The same Message-ID on every retry lets mail systems drop a duplicate
            # if we crash after the server accepted the message but before we recorded it.
            headers={"Message-ID": f"<{delivery_id}@lcm.alerts>", "X-LCM-Fingerprint": message.fingerprint},
        )
        try:
            with get_connection(timeout=HTTP_TIMEOUT_SECONDS) as connection:
                connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"every recipient was refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise TransientError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
