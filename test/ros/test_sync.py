"""ApproximateTimeSynchronizer: the message_filters test_approxsync cases plus random streams."""

import random

import pytest

from smmcl_ros.pipeline.sync import ApproximateTimeSynchronizer

SEC = 1_000_000_000


class Collector:
    def __init__(self):
        self.sets = []

    def __call__(self, *msgs):
        self.sets.append(msgs)


def _sync(queue_size, slop, num_inputs=2):
    out = Collector()
    return ApproximateTimeSynchronizer(num_inputs, queue_size, slop, out), out


def test_pairs_with_equal_stamps_emit_on_the_second_message():
    sync, out = _sync(1, 0.1)
    for t in range(10):
        out.sets.clear()
        assert not sync.add(0, t * SEC, ('a', t))
        assert out.sets == []
        assert sync.add(1, t * SEC, ('b', t))
        assert out.sets == [(('a', t), ('b', t))]


@pytest.mark.parametrize('n', range(1, 10))
def test_scrambled_sequences_are_recombined(n):
    # message_filters' test_approx: all of port 0 arrives scrambled, then all of port 1.
    rng = random.Random(n)
    sync, out = _sync(n, 0.1)
    seq0 = [(0, t, rng.random()) for t in range(n)]
    seq1 = [(1, t, rng.random()) for t in range(n)]
    for msg in rng.sample(seq0, n):
        sync.add(0, msg[1] * SEC, msg)
    assert out.sets == []
    for msg in rng.sample(seq1, n):
        sync.add(1, msg[1] * SEC, msg)
    assert set(out.sets) == set(zip(seq0, seq1))


def test_spread_must_be_strictly_below_slop():
    sync, out = _sync(5, 0.1)
    sync.add(0, 0, 'a')
    assert not sync.add(1, SEC // 10, 'b')  # exactly slop apart: message_filters rejects
    assert sync.add(1, SEC // 10 - 1, 'c')
    assert out.sets == [('a', 'c')]


def test_closest_candidate_wins_and_is_consumed():
    sync, out = _sync(5, 0.05)
    for stamp in (100, 120, 140):
        sync.add(1, stamp * 1_000_000, f'aux{stamp}')
    sync.add(0, 125 * 1_000_000, 'rgb125')
    assert out.sets == [('rgb125', 'aux120')]
    assert sync.queued() == [0, 2]


def test_queue_evicts_oldest_stamp():
    sync, out = _sync(2, 0.01)
    for t in (3, 1, 2):  # arrival order differs from stamp order: stamp 1 is evicted
        sync.add(0, t * SEC, t)
    assert sync.queued() == [2, 0]
    assert not sync.add(1, 1 * SEC, 'x1')
    assert sync.add(1, 2 * SEC, 'x2')
    assert out.sets == [(2, 'x2')]


def test_out_of_order_match_is_possible_as_in_message_filters():
    # The Python policy matches greedily per arrival, so outputs need not be in stamp order.
    sync, out = _sync(5, 0.010)
    sync.add(1, 0, 'b0')
    sync.add(1, 5_000_000, 'b5')
    sync.add(0, 6_000_000, 'a6')
    sync.add(0, 7_000_000, 'a7')
    assert out.sets == [('a6', 'b5'), ('a7', 'b0')]


def test_three_inputs():
    sync, out = _sync(3, 0.02, num_inputs=3)
    sync.add(0, 1000, 'a')
    sync.add(2, 1000 + 15_000_000, 'c')
    assert out.sets == []
    sync.add(1, 1000 + 5_000_000, 'b')
    assert out.sets == [('a', 'b', 'c')]


@pytest.mark.parametrize('seed', range(5))
def test_random_jittered_streams(seed):
    """Two 30 Hz cameras with jitter, drops and shuffled arrival (as in message_filters)."""
    rng = random.Random(seed)
    period, slop, queue = SEC // 30, 0.010, 10
    sync, out = _sync(queue, slop)
    events = []
    for i in range(300):
        base = i * period
        for port in (0, 1):
            if rng.random() < 0.1:
                continue  # dropped frame
            stamp = base + rng.randint(-4_000_000, 4_000_000)  # +-4 ms jitter
            arrival = stamp + rng.randint(0, 20_000_000)  # up to 20 ms transport delay
            events.append((arrival, port, stamp, (port, i, stamp)))
    events.sort()
    for _, port, stamp, msg in events:
        sync.add(port, stamp, msg)
    used = set()
    for a, b in out.sets:
        assert a[0] == 0 and b[0] == 1  # port order kept
        assert abs(a[2] - b[2]) < slop * 1e9  # within slop
        assert a not in used and b not in used  # never reused
        used.update((a, b))
        assert a[1] == b[1]  # +-4 ms jitter vs 33 ms period: only true partners fit
    both = {i for _, _, _, (port, i, _) in events if port == 0} & \
        {i for _, _, _, (port, i, _) in events if port == 1}
    assert len(out.sets) == len(both)  # every frame present on both streams was paired
    stamps0 = [a[2] for a, _ in out.sets]
    assert stamps0 == sorted(stamps0)  # in-order streams give in-order output here


def test_discard_after_keeps_the_new_timeline():
    sync, out = _sync(5, 0.01)
    sync.add(0, 31 * SEC, 'rgb31')  # old timeline, never paired
    sync.add(0, 25 * SEC, 'rgb25')  # timeline restarted
    assert sync.discard_after(25 * SEC) == 1
    assert sync.add(1, 25 * SEC, 'aux25')
    assert out.sets == [('rgb25', 'aux25')]


def test_clear_and_argument_checks():
    sync, out = _sync(3, 0.1)
    sync.add(0, 5 * SEC, 'a')
    sync.clear()
    assert not sync.add(1, 5 * SEC, 'b')
    assert out.sets == []
    for bad in (dict(num_inputs=1, queue_size=1, slop=0.1),
                dict(num_inputs=2, queue_size=0, slop=0.1),
                dict(num_inputs=2, queue_size=1, slop=0.0)):
        with pytest.raises(ValueError):
            ApproximateTimeSynchronizer(callback=print, **bad)
