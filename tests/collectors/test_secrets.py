"""API secrets encrypted at rest, never shown, checked against apiRestrictions on save."""
import hashlib
import hmac

import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from collectors import secrets
from collectors.admin import CredentialForm
from collectors.models import ApiResponse, ExchangeCredential
from compliance.models import Venue
from tests.collectors.live_support import ThreadedHttpServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(settings):
    settings.SECRETS_KEY = Fernet.generate_key().decode()
    return settings.SECRETS_KEY


def restrictions_exchange(*, withdrawals: bool):
    async def server_time(request):
        import time

        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def restrictions(request):
        payload, _, signature = request.query_string.rpartition("&signature=")
        good = hmac.new(b"the-secret", payload.encode(), hashlib.sha256).hexdigest()
        if signature != good:
            return web.json_response({"code": -1022, "msg": "Signature for this request is not valid."}, status=400)
        return web.json_response(
            {"ipRestrict": False, "enableReading": True, "enableSpotAndMarginTrading": True, "enableWithdrawals": withdrawals}
        )

    app = web.Application()
    app.router.add_get("/api/v3/time", server_time)
    app.router.add_get("/sapi/v1/account/apiRestrictions", restrictions)
    return app


def venue(url):
    return Venue.objects.create(
        name="Binance spot", exchange="binance", market_type="spot", tier=1, rest_base_url=url, ws_base_url="ws://127.0.0.1:1"
    )


def test_round_trip_and_tamper(key):
    token = secrets.encrypt("s3cret")
    assert "s3cret" not in token and secrets.decrypt(token) == "s3cret"
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(token[:-4] + "AAAA")


def test_missing_or_bad_key_is_a_clear_configuration_error(settings):
    settings.SECRETS_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="SECRETS_KEY is not set"):
        secrets.encrypt("x")
    settings.SECRETS_KEY = "short"
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        secrets.encrypt("x")


def test_key_that_can_withdraw_is_flagged_and_the_secret_is_stored_encrypted(key):
    with ThreadedHttpServer(restrictions_exchange(withdrawals=True)) as server:
        cred = secrets.store_credential(venue=venue(server.url), label="desk", api_key="AKEY12345678", secret="the-secret")
    cred.refresh_from_db()
    assert cred.can_withdraw is True and cred.check_error == "" and cred.restrictions["enableReading"] is True
    assert "the-secret" not in cred.secret_encrypted and cred.secret() == "the-secret"
    assert ApiResponse.objects.filter(path="/sapi/v1/account/apiRestrictions", http_status=200).count() == 1


def test_read_only_key_passes_and_an_unreachable_exchange_leaves_it_unchecked(key):
    with ThreadedHttpServer(restrictions_exchange(withdrawals=False)) as server:
        v = venue(server.url)
        cred = secrets.store_credential(venue=v, label="desk", api_key="AKEY12345678", secret="the-secret")
    assert cred.can_withdraw is False
    v.rest_base_url = "http://127.0.0.1:9"
    v.save()
    cred = secrets.store_credential(venue=v, label="other", api_key="BKEY12345678", secret="x")
    assert cred.can_withdraw is None and "Unreachable" not in cred.check_error and cred.check_error


def test_admin_form_never_renders_the_secret(key):
    with ThreadedHttpServer(restrictions_exchange(withdrawals=False)) as server:
        v = venue(server.url)
        form = CredentialForm(data={"venue": v.pk, "label": "desk", "api_key": "AKEY12345678", "secret": "the-secret", "is_active": "on"})
        assert form.is_valid(), form.errors
        cred = form.save()
    html = CredentialForm(instance=cred).as_p()
    assert "the-secret" not in html and cred.secret_encrypted not in html
    assert ExchangeCredential.objects.get().secret() == "the-secret"


def test_admin_save_flags_a_withdrawal_key_to_the_admin(key, admin_client_user):
    client, _ = admin_client_user
    with ThreadedHttpServer(restrictions_exchange(withdrawals=True)) as server:
        v = venue(server.url)
        response = client.post("/admin/collectors/exchangecredential/add/", {
            "venue": v.pk, "label": "desk", "api_key": "AKEY12345678", "secret": "the-secret", "is_active": "on",
        }, follow=True)
    assert response.status_code == 200
    assert "can WITHDRAW funds" in response.content.decode()
    cred = ExchangeCredential.objects.get()
    assert cred.can_withdraw is True and cred.secret() == "the-secret"
    page = client.get(f"/admin/collectors/exchangecredential/{cred.pk}/change/").content.decode()
    assert "the-secret" not in page and cred.secret_encrypted not in page


@pytest.fixture
def admin_client_user(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.force_login(user)
    return client, user
