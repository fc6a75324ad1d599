"""Request security as Binance checks it: API key, timestamp/recvWindow, signature.

REST: binance_spot_api_docs_rest_api_endpoint_security_type.md ('SIGNED', 'Timing security'):
the HMAC-SHA256 signature covers the query string followed directly by the body, without the
`signature` parameter. WebSocket API: websocket_api_request_security.md: parameters sorted by
name, HMAC hex or Ed25519 base64.
"""
import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000


class ApiError(Exception):
    """An error Binance answers with {"code": ..., "msg": ...} and an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: dict | None = None):
        super().__init__(msg)
        self.code, self.msg, self.status, self.headers = code, msg, status, headers or {}

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


BAD_KEY_FORMAT = (-2014, "API-key format invalid.")
REJECTED_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    ed25519_api_key: str
    ed25519_seed_hex: str

    def ed25519_private_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.ed25519_seed_hex))


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> tuple[str, str | None]:
    """The raw parameter string without its `signature=` part, and the signature."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def check_api_key(credentials: Credentials, api_key: str | None) -> None:
    if not api_key:
        raise ApiError(*BAD_KEY_FORMAT, status=401)
    if api_key != credentials.api_key:
        raise ApiError(*REJECTED_KEY, status=401)


def check_timestamp(params: dict, server_ms: int) -> None:
    raw = params.get("timestamp")
    if raw in (None, ""):
        raise ApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    try:
        timestamp = int(raw)
        recv_window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except (TypeError, ValueError):
        raise ApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    if recv_window > MAX_RECV_WINDOW_MS:
        raise ApiError(-1131, "recvWindow must be less than 60000")
    if timestamp >= server_ms + 1000:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - timestamp > recv_window:
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def check_rest_signature(credentials: Credentials, query: str, body: str) -> None:
    query_payload, query_sig = strip_signature(query)
    body_payload, body_sig = strip_signature(body)
    signature = query_sig or body_sig
    if not signature:
        raise ApiError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    expected = hmac_hex(credentials.api_secret, query_payload + body_payload)
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(-1022, "Signature for this request is not valid.")


def sorted_payload(params: dict) -> str:
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "signature")


def check_ws_signature(credentials: Credentials, params: dict, *, ed25519: bool) -> None:
    signature = params.get("signature")
    if not signature:
        raise ApiError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    payload = sorted_payload(params)
    if ed25519:
        public_key = credentials.ed25519_private_key().public_key()
        try:
            public_key.verify(base64.b64decode(signature), payload.encode())
        except (InvalidSignature, ValueError):
            raise ApiError(-1022, "Signature for this request is not valid.")
    elif not hmac.compare_digest(hmac_hex(credentials.api_secret, payload), str(signature).lower()):
        raise ApiError(-1022, "Signature for this request is not valid.")


def sign_ed25519(credentials: Credentials, params: dict) -> str:
    """For clients and tests: the base64 Ed25519 signature of a WebSocket API request."""
    return base64.b64encode(credentials.ed25519_private_key().sign(sorted_payload(params).encode())).decode()
