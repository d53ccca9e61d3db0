"""The soak's memory verdict: growth over the run, not start-up or a passing spike."""

from __future__ import annotations

from bankrun.soak import Sampler


def sampled(curves: dict[str, list[float]], every: float = 5.0) -> Sampler:
    sampler = Sampler()
    for name, values in curves.items():
        for i, mb in enumerate(values):
            sampler.samples.append({"t_s": i * every, "process": name, "pid": 1, "rss_mb": mb})
    sampler.samples.sort(key=lambda s: s["t_s"])
    return sampler


def test_start_up_and_a_spike_are_not_growth_but_a_steady_climb_is():
    minutes = 10 * 12  # ten minutes of 5-second samples
    level = [40.0 + min(i, 12) * 2 for i in range(minutes)]  # 40 -> 64 MB in the first minute
    level[100] = 120.0  # a compaction's moment
    climbing = [40.0 + i * 0.5 for i in range(minutes)]  # 6 MB a minute, all along
    table = sampled({"steady": level, "leaking": climbing}).table()
    assert table["steady"]["growth"] == 0.0
    assert table["steady"]["peak_mb"] == 120.0
    assert table["leaking"]["growth"] > 0.2
    assert 5.9 < table["leaking"]["slope_mb_per_min"] < 6.1


def test_a_short_soak_keeps_three_quarters_of_its_samples():
    sampler = sampled({"p": [50.0] * 13})  # one minute
    begin, end = sampler.warmup()
    assert (begin, end) == (15.0, 60.0)
