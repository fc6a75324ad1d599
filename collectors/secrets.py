"""Encryption at rest for exchange API secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from the environment (settings.SECRETS_KEY, env SECRETS_KEY); generate one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
"""
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key, or was altered."""


def _fernet() -> Fernet:
    key = settings.SECRETS_KEY
    if not key:
        raise ImproperlyConfigured(
            "SECRETS_KEY is not set: exchange secrets cannot be stored. Generate one with "
            "`python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`."
        )
    try:
        return Fernet(key.encode() if isinstance(key, str) else key)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"SECRETS_KEY is not a Fernet key (32 url-safe base64 bytes): {exc}") from None


def encrypt(secret: str) -> str:
    if not secret:
        raise ValueError("An empty secret cannot be stored.")
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("The stored secret cannot be decrypted with the current SECRETS_KEY.") from None


def restrictions_base_url(venue) -> str:
    """apiRestrictions is a SAPI (spot/wallet) endpoint: a futures venue's key is checked on its exchange's spot venue."""
    from compliance.models import MarketType, Venue

    if venue.market_type == MarketType.SPOT:
        return venue.rest_base_url
    spot = Venue.objects.filter(exchange=venue.exchange, market_type=MarketType.SPOT).order_by("pk").first()
    if spot is None:
        raise ValueError(f"No {venue.exchange} spot venue to check the key's restrictions against (apiRestrictions is a SAPI endpoint).")
    return spot.rest_base_url


async def fetch_api_restrictions(*, base_url: str, api_key: str, secret: str, recorder=None) -> dict:
    """GET /sapi/v1/account/apiRestrictions (USER_DATA, signed)."""
    from collectors.rest import BinanceRest

    async with BinanceRest(base_url, time_path="/api/v3/time", api_key=api_key, secret=secret, recorder=recorder) as rest:
        await rest.sync_clock()
        body = await rest.request("GET", "/sapi/v1/account/apiRestrictions", signed=True)
    if not isinstance(body, dict) or "enableWithdrawals" not in body:
        raise ValueError(f"apiRestrictions answered without enableWithdrawals: {body!r:.200}")
    return body


def store_credential(*, venue, label: str, api_key: str, secret: str, credential=None):
    """Encrypt and save a key, checking it against apiRestrictions first.

    The key is saved even when the check fails (the exchange may be unreachable); the
    failure is stored in check_error and `can_withdraw` stays unknown (None).
    """
    from asgiref.sync import async_to_sync
    from django.utils import timezone

    from collectors.api_health import recorder_for
    from collectors.models import ExchangeCredential
    from collectors.rest import ExchangeError, Unreachable

    api_key, secret = api_key.strip(), secret.strip()
    if not api_key:
        raise ValueError("The API key is empty.")
    credential = credential or ExchangeCredential(venue=venue)
    credential.venue, credential.label, credential.api_key = venue, label, api_key
    credential.secret_encrypted = encrypt(secret)
    try:
        restrictions = async_to_sync(fetch_api_restrictions)(
            base_url=restrictions_base_url(venue), api_key=api_key, secret=secret, recorder=recorder_for(venue.pk)
        )
    except (ExchangeError, Unreachable, ValueError) as exc:
        credential.restrictions, credential.can_withdraw, credential.check_error = {}, None, str(exc)
    else:
        credential.restrictions = restrictions
        credential.can_withdraw = bool(restrictions["enableWithdrawals"])
        credential.check_error = ""
    credential.checked_at = timezone.now()
    credential.save()
    return credential
