"""A restarted dispatcher: one pass of alerts.delivery.deliver_due, in its own process."""
import json
import os
import sys

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from alerts import delivery  # noqa: E402

print(json.dumps(delivery.deliver_due()), flush=True)
