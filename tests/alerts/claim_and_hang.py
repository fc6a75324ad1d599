"""A dispatcher that dies between claiming and sending: claims one notification with the real
claim (alerts.delivery.claim), says so, and waits to be killed. Run as a subprocess."""
import os
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402

from alerts import delivery  # noqa: E402

token = delivery.claim(sys.argv[1], now=timezone.now())
print("claimed" if token else "not-claimed", flush=True)
time.sleep(600)
