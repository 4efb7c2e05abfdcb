"""NodeStats: rates over the period between snapshots, totals, and a level that recovers."""

from smmcl_ros.pipeline.stats import ERROR, NodeStats, OK, WARN


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _values(snapshot) -> dict:
    return dict(snapshot[2])


def test_rates_totals_and_latency_per_window():
    clock = FakeClock()
    stats = NodeStats(clock)
    for _ in range(20):
        stats.count('rgb_in')
    stats.count('aux_in', 10)
    stats.frame_done(0.120, 0.100)
    stats.frame_done(0.140, 0.110)
    clock.now += 2.0
    level, message, values = stats.snapshot(0.05, False, 'cpu')
    values = dict(values)
    assert (level, message) == (OK, 'running')
    assert values['rgb_rate_hz'] == '10.00' and values['aux_rate_hz'] == '5.00'
    assert values['output_rate_hz'] == '1.00' and values['frames_out_total'] == '2'
    assert values['latency_ms_max'] == '140.00' and values['inference_ms_p50'] == '105.00'
    clock.now += 1.0
    values = _values(stats.snapshot(0.05, False, 'cpu'))
    assert values['rgb_rate_hz'] == '0.00' and values['latency_ms_p50'] == 'nan'
    assert values['frames_out_total'] == '2'  # totals persist across windows


def test_level_reflects_the_last_period_and_recovers():
    clock = FakeClock()
    stats = NodeStats(clock)
    stats.issue('model', 'inference_error')
    clock.now += 1.0
    level, message, values = stats.snapshot(0.1, False, 'cpu')
    assert (level, message) == (ERROR, 'inference errors')
    clock.now += 1.0
    level, _, values = stats.snapshot(0.1, False, 'cpu')
    assert level == OK
    assert dict(values)['input.model.inference_error'] == '1'  # history kept in the totals

    stats.issue('rgb/image', 'short_data')
    stats.issue('rgb/image', 'short_data')
    clock.now += 1.0
    level, message, values = stats.snapshot(0.1, False, 'cpu')
    assert level == WARN and '2 in the last period' in message
    assert dict(values)['inputs_rejected_total'] == '3'
    clock.now += 1.0
    assert stats.snapshot(0.1, False, 'cpu')[0] == OK

    stats.issue('aux/image', 'size_mismatch')  # repaired, not rejected
    clock.now += 1.0
    assert stats.snapshot(0.1, False, 'cpu')[0] == OK
    assert stats.snapshot(None, True, 'cpu')[:2] == (WARN, 'aux stream silent')
