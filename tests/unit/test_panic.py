"""The panic model's core: heterogeneous thresholds, the cascade, and its feedback."""

from __future__ import annotations

import random

from bankrun.domain.panic import Crowd, PanicParams, Signals

CUSTOMERS = [
    (f"c-{i:04d}", 1_000_000 if i % 10 == 0 else 10_000, "whale" if i % 10 == 0 else "retail")
    for i in range(1_000)
]


def run(crowd: Crowd, news: float, liquid: int, hours: int = 48) -> int:
    """A venue that pays from `liquid` while it lasts and queues the rest; returns how many
    customers asked for their money."""
    for hour in range(hours):
        for ask in crowd.decide(hour, Signals(news=news)):
            paid = ask.amount <= liquid
            liquid -= ask.amount if paid else 0
            crowd.answered(ask.account, "paid" if paid else "queued", ask.amount, hour)
    return sum(1 for p in crowd.people.values() if p.state != "calm")


def test_thresholds_are_seeded_and_differ():
    a = Crowd(CUSTOMERS, PanicParams(), seed=1)
    b = Crowd(CUSTOMERS, PanicParams(), seed=1)
    thresholds = [p.threshold for p in a.people.values()]
    assert thresholds == [p.threshold for p in b.people.values()]
    assert len(set(thresholds)) > 900


def test_quiet_news_starts_no_run():
    crowd = Crowd(CUSTOMERS, PanicParams(), seed=2)
    assert crowd.decide(0, Signals(news=0.0)) == []


def test_whales_and_the_informed_move_first():
    crowd = Crowd(CUSTOMERS, PanicParams(), seed=3)
    first = []
    for step in range(100):
        first += [a.account for a in crowd.decide(step, Signals(news=step / 100))]
        if len(first) >= 50:
            break
    early = [crowd.people[a] for a in first[:50]]
    skittish = sum(1 for p in early if p.whale or p.informed) / len(early)
    overall = sum(1 for p in crowd.people.values() if p.whale or p.informed) / len(crowd.people)
    assert skittish > 2 * overall


def test_a_venue_that_cannot_pay_turns_the_same_news_into_a_run():
    """Diamond-Dybvig: the same headline, met by a venue that pays or one that queues."""
    news = 0.4
    paying = run(Crowd(CUSTOMERS, PanicParams(), seed=4), news, liquid=10**12)
    queuing = run(Crowd(CUSTOMERS, PanicParams(), seed=4), news, liquid=200_000)
    assert queuing > 2 * paying


def test_a_credible_guarantee_stops_the_run():
    news = 0.4
    unguarded = run(Crowd(CUSTOMERS, PanicParams(), seed=5), news, liquid=200_000)
    guarded = run(Crowd(CUSTOMERS, PanicParams(guarantee=0.8), seed=5), news, liquid=200_000)
    assert guarded < unguarded / 4


def test_a_refused_customer_asks_again_after_its_wait():
    crowd = Crowd(CUSTOMERS[:1], PanicParams(threshold_mean=0.1, threshold_spread=0), seed=6)
    (ask,) = crowd.decide(0, Signals(news=1.0))
    crowd.answered(ask.account, "rejected", ask.amount, 0)
    assert crowd.decide(1.0, Signals(news=1.0)) == []  # retry_hours is 2
    (again,) = crowd.decide(2.0, Signals(news=1.0))
    assert again.retry and again.account == ask.account


def test_a_halt_is_the_worst_trouble():
    crowd = Crowd(CUSTOMERS, PanicParams(), seed=7)
    assert crowd.fear(Signals(halted=True)) > crowd.fear(Signals()) + 0.5
    rng = random.Random(0)
    assert crowd.fear(Signals(news=rng.random(), drawdown=0.9)) > crowd.fear(Signals(drawdown=0.0))
