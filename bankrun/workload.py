"""What a scenario does to its venues, as events: genesis (venues, funded customers, time zero),
clock ticks, and the withdrawal requests of the load model.

Pure and seeded: `sim` feeds these events to the core in process; `run` publishes the genesis
and ticks to Kafka and has Locust send the same requests through the gateway at their times.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bankrun import events as ev
from bankrun.domain.market import DEFAULT_MARKETS, MarketSpec
from bankrun.scenario import ConstantLoad, Scenario, VenueSpec

HOUR = 3600.0


@dataclass(frozen=True)
class Customer:
    venue: str
    account: str
    asset: str
    balance: int
    segment: str


@dataclass(frozen=True)
class Request:
    """One planned withdrawal: who asks, how much, at what scenario second."""

    at: float
    venue: str
    account: str
    asset: str
    amount: int
    request_id: str


def customers(scenario: Scenario, venue: VenueSpec) -> list[Customer]:
    """Balances that add up exactly to the venue's total deposits. Drawn once per seed and
    venue: genesis and the panic desk both ask (a Monte Carlo seed's 10,000 customers)."""
    dist = venue.balances
    return list(
        _drawn(
            scenario.seed,
            venue.crowd,
            venue.id,
            venue.asset,
            venue.customers,
            venue.total_deposits,
            dist.distribution,
            dist.alpha,
            venue.whale_share,
        )
    )


@functools.lru_cache(maxsize=64)
def _drawn(
    seed: int,
    crowd: str,
    venue: str,
    asset: str,
    n: int,
    total: int,
    distribution: str,
    alpha: float,
    whale_share: float,
) -> tuple[Customer, ...]:
    rng = random.Random(f"{seed}/{crowd}/balances")
    if distribution == "equal":
        weights = [1.0] * n
    elif distribution == "uniform":
        weights = [rng.uniform(0.1, 1.0) for _ in range(n)]
    else:
        weights = [rng.paretovariate(alpha) for _ in range(n)]
    scale = (total - n) / sum(weights)
    amounts = [1 + int(w * scale) for w in weights]
    amounts[max(range(n), key=amounts.__getitem__)] += total - sum(amounts)
    whales = set(sorted(range(n), key=lambda i: -amounts[i])[: int(n * whale_share)])
    return tuple(
        Customer(venue, f"cust-{i:05d}", asset, amount, "whale" if i in whales else "retail")
        for i, amount in enumerate(amounts)
    )


def genesis(scenario: Scenario, started_at: float, speed: float) -> list[ev.Event]:
    """Venues, their funded customers, then scenario time zero, per venue."""
    out: list[ev.Event] = [
        ev.MarketOpened(scenario_time=0, market=m.symbol, spec=m) for m in scenario.markets
    ]
    out += market_ticks(scenario, 0.0)  # makers quote before anyone needs them
    priced = holding_markets(scenario.markets)
    for venue in scenario.venues:
        out.append(
            ev.VenueOpened(
                venue=venue.id,
                scenario_time=0,
                policy=venue.policy,
                params=venue.params,
                gate=venue.gate.model_dump() if venue.gate else None,
                assets=(venue.asset,),
                markets=priced,
                claims=tuple(scenario.claims_of(venue.id)),
                por=venue.por,
            )
        )
        out += [
            ev.AccountFunded(
                venue=c.venue,
                scenario_time=0,
                account=c.account,
                asset=c.asset,
                amount=c.balance,
                segment=c.segment,
            )
            for c in customers(scenario, venue)
        ]
        out.append(
            ev.ScenarioStarted(
                venue=venue.id,
                scenario_time=0,
                started_at=started_at,
                speed=speed,
                duration_hours=scenario.duration_hours,
                paced_by="wall" if isinstance(scenario.load, ConstantLoad) else "ticks",
            )
        )
    return out


def holding_markets(markets: Iterable[MarketSpec] = DEFAULT_MARKETS) -> dict[str, ev.HoldingMarket]:
    """What a venue is told about the markets: which one prices (and buys) each holding."""
    return {
        h: ev.HoldingMarket(
            market=m.symbol, start_price=m.start_price, base_unit=m.base_unit, lot_size=m.lot_size
        )
        for m in markets
        for h in m.backs
    }


def all_hot_venue(venue: str, customers: int, balance: int) -> list[ev.Event]:
    """A full-reserve venue keeping every unit hot, with `customers` funded alike: the
    benchmarks' venue, where nothing waits for liquidity."""
    return [
        ev.VenueOpened(
            venue=venue,
            scenario_time=0,
            policy="full-reserve",
            params={"hot_ratio": 1.0, "warm_ratio": 0.0},
        ),
        *(
            ev.AccountFunded(
                venue=venue, scenario_time=0, account=f"c-{i}", asset="USD", amount=balance
            )
            for i in range(customers)
        ),
    ]


def tick_times(scenario: Scenario) -> list[float]:
    """Scenario seconds of every clock tick after zero, up to and including the end."""
    step = scenario.tick_hours * HOUR
    n = round(scenario.duration_hours / scenario.tick_hours)
    return [k * step for k in range(1, n + 1)]


def ticks_at(scenario: Scenario, t: float) -> list[ev.Event]:
    """Everything the scenario clock says at `t`: markets re-quote and report prices first,
    then each venue lands what is due and rebalances."""
    return [
        *market_ticks(scenario, t),
        *(ev.ClockTick(venue=v.id, scenario_time=t) for v in scenario.venues),
    ]


def market_ticks(scenario: Scenario, t: float) -> list[ev.MarketTick]:
    """A tick per market; prices are marked to every venue, but only for markets that price
    a holding (a market that backs nothing is quoted for its own sake)."""
    severity = round(scenario.news_severity(t / HOUR), 6)
    venues = tuple(v.id for v in scenario.venues)
    return [
        ev.MarketTick(
            scenario_time=t,
            market=m.symbol,
            news_severity=severity,
            mark_venues=venues if m.backs else (),
        )
        for m in scenario.markets
    ]


def ticks(scenario: Scenario) -> list[ev.Event]:
    return [tick for t in tick_times(scenario) for tick in ticks_at(scenario, t)]


def requests(scenario: Scenario) -> list[Request]:
    """The constant load: each step, `amount_per_hour * step_hours` per venue in equal requests,
    from customers in a seeded rotation who still hold enough. Ordered by time."""
    load = scenario.load
    if not isinstance(load, ConstantLoad):
        return []  # a panic is decided as it unfolds (`sim.simulate`), not planned
    out: list[Request] = []
    for venue in scenario.venues:
        rng = random.Random(f"{scenario.seed}/{venue.id}/load")
        people = customers(scenario, venue)
        rng.shuffle(people)
        left = {c.account: c.balance for c in people}
        per_step = int(load.amount_per_hour * load.step_hours)
        size, extra = divmod(per_step, load.requests_per_step)
        turn = 0
        for k, t in enumerate(_steps(scenario)):
            for j in range(load.requests_per_step):
                amount = size + (extra if j == load.requests_per_step - 1 else 0)
                if amount <= 0:
                    continue
                who = _next_able(people, left, amount, turn)
                if who is None:
                    break
                turn = who + 1
                c = people[who]
                left[c.account] -= amount
                at = t + j * load.step_hours * HOUR / load.requests_per_step
                out.append(
                    Request(at, venue.id, c.account, c.asset, amount, f"{venue.id}-{k:05d}-{j:03d}")
                )
    return sorted(out, key=lambda r: (r.at, r.venue, r.request_id))


def _steps(scenario: Scenario) -> Iterator[float]:
    load = scenario.load
    assert isinstance(load, ConstantLoad)
    k = 0
    while (t := (load.start_hours + k * load.step_hours)) < scenario.duration_hours:
        yield t * HOUR
        k += 1


def _next_able(people: list[Customer], left: dict[str, int], amount: int, turn: int) -> int | None:
    n = len(people)
    for offset in range(n):
        i = (turn + offset) % n
        if left[people[i].account] >= amount:
            return i
    return None


def request_event(r: Request) -> ev.WithdrawalRequested:
    """The event the gateway would publish for `r` (sim uses it directly)."""
    return ev.WithdrawalRequested(
        event_id=ev.idempotent_id("withdrawal", r.venue, r.request_id),
        venue=r.venue,
        scenario_time=r.at,
        account=r.account,
        asset=r.asset,
        amount=r.amount,
        request_id=r.request_id,
    )
