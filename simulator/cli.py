"""Command line of the simulator, shared by `python -m simulator` and `manage.py simulator`."""
import argparse
import asyncio
import logging

from .auth import Credentials
from .catalog import DEMO_API_KEY, DEMO_API_SECRET, DEMO_ED25519_API_KEY, DEMO_ED25519_SEED_HEX
from .scenarios import NAMES, ScenarioError
from .server import Options, Simulator

log = logging.getLogger("simulator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=1, help="same seed, same sequence of books")
    parser.add_argument("--scenario", default="demo",
                        help=f"comma-separated, each name or name(key=value,...); names: {', '.join(NAMES)}")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiplies scenario times, the 10-minute indicator cycle and lock durations")
    parser.add_argument("--step-ms", type=int, default=50, help="engine step (diff streams aggregate steps)")
    parser.add_argument("--weight-limit", type=int, default=None,
                        help="REQUEST_WEIGHT per window (default Binance's: spot 6000, futures 2400)")
    parser.add_argument("--weight-window", type=float, default=60.0, help="seconds per weight window")
    parser.add_argument("--ban-seconds", type=float, default=120.0, help="IP ban after ignoring a 429")
    parser.add_argument("--listen-key-ttl", type=float, default=3600.0, help="seconds without keepalive")
    parser.add_argument("--connection-lifetime", type=float, default=86400.0, help="stream sockets close after")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="server ping frames every N s")
    parser.add_argument("--quant-min-orders", type=int, default=None,
                        help="futures: orders in the cycle before an indicator is judged "
                             "(default Binance's 2020 rules: UFR/DR 10000, GCR/IFER 5000)")
    parser.add_argument("--api-key", default=DEMO_API_KEY)
    parser.add_argument("--api-secret", default=DEMO_API_SECRET)
    parser.add_argument("--ed25519-api-key", default=DEMO_ED25519_API_KEY)
    parser.add_argument("--ed25519-seed", default=DEMO_ED25519_SEED_HEX, help="hex of the 32-byte private key")
    parser.add_argument("--replay", action="append", default=[], metavar="FILE[,FILE...]",
                        help="serve a recording (binance-captures *.gz, or a cryptofeed BINANCE* file); repeatable")
    parser.add_argument("--replay-speed", type=float, default=1.0, help="1 = real time, N = N×, 0 = full speed")
    parser.add_argument("--replay-loop", action="store_true", help="start the recording again when it ends")


def options_from(args) -> Options:
    return Options(
        seed=args.seed, step_s=args.step_ms / 1000, time_scale=args.time_scale, weight_limit=args.weight_limit,
        weight_window_s=args.weight_window, ban_s=args.ban_seconds, listen_key_ttl_s=args.listen_key_ttl,
        connection_lifetime_s=args.connection_lifetime, ping_interval_s=args.ping_interval,
        quant_min_orders=args.quant_min_orders,
        credentials=Credentials(args.api_key, args.api_secret, args.ed25519_api_key, args.ed25519_seed),
    )


def build(args) -> Simulator:
    from .replay import load_replay_venue

    options = options_from(args)
    replays = []
    for argument in args.replay:
        venue = load_replay_venue(argument, options=options, speed=args.replay_speed, loop=args.replay_loop)
        if venue.name in [r.name for r in replays]:
            raise ValueError(f"Two replays are both named {venue.name}; name them: --replay NAME=FILE[,FILE].")
        replays.append(venue)
    return Simulator(options, scenario=args.scenario, replays=replays)


async def serve(args) -> None:
    simulator = build(args)
    await simulator.start(args.host, args.port)
    base = f"http://{args.host}:{simulator.port}"
    log.info("simulator listening on %s (seed %s, scenario %s)", base, args.seed, args.scenario)
    for venue in simulator.venues.values():
        log.info("  %-14s %-4s REST %s/%s  WS ws://%s:%s/%s", venue.name, venue.spec.market_type, base, venue.name,
                 args.host, simulator.port, venue.name)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="A local exchange speaking Binance's protocol.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per request drowns the log
    try:
        asyncio.run(serve(args))
    except (ScenarioError, ValueError, OSError) as exc:
        parser.exit(2, f"simulator: {exc}\n")
    except KeyboardInterrupt:
        pass
