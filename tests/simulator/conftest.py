import aiohttp
import pytest

from simulator.server import Options, Simulator


class Running:
    """A simulator started in-process on a free port, with an HTTP session to talk to it."""

    def __init__(self, simulator: Simulator, session: aiohttp.ClientSession):
        self.sim, self.session = simulator, session
        self.base = f"http://127.0.0.1:{simulator.port}"
        self.ws_base = f"ws://127.0.0.1:{simulator.port}"

    async def get(self, path, **kwargs):
        async with self.session.get(self.base + path, **kwargs) as response:
            return response.status, await response.json(content_type=None), response.headers

    async def control(self, path, body):
        async with self.session.post(self.base + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@pytest.fixture
async def sim_factory():
    """start(scenario=..., replays=..., **Options fields) -> Running; everything started is stopped after."""
    started = []

    async def start(scenario="calm", replays=(), **option_overrides):
        simulator = Simulator(Options(**option_overrides), scenario=scenario, replays=replays)
        await simulator.start("127.0.0.1", 0)
        running = Running(simulator, aiohttp.ClientSession())
        started.append(running)
        return running

    yield start
    for running in started:
        await running.session.close()
        await running.sim.stop()


@pytest.fixture
async def sim(sim_factory):
    return await sim_factory()
