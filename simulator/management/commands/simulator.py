"""`python manage.py simulator ...`: the same server and options as `python -m simulator ...`."""
from django.core.management.base import BaseCommand

from simulator.cli import add_arguments, main


class Command(BaseCommand):
    help = "Run the exchange simulator (Binance protocol, synthetic markets, scenarios, faults, replay)."

    def add_arguments(self, parser):
        add_arguments(parser)

    def run_from_argv(self, argv):
        main(argv[2:])  # the simulator owns its argument parsing; it needs nothing from Django
