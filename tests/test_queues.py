import threading

import pytest

from livebokeh.queues import END, Empty, FifoQueue, Full, LatestQueue


def test_latest_queue_keeps_the_newest_and_counts_drops():
    q = LatestQueue()
    for i in range(5):
        q.put(i)
    assert q.get(timeout=0.1) == 4
    assert q.dropped == 4
    with pytest.raises(Empty):
        q.get(timeout=0.01)


def test_latest_queue_never_drops_the_end_marker():
    q = LatestQueue()
    q.put(1)
    q.put(END)
    q.put(2)  # after END nothing is taken
    assert q.get(timeout=0.1) == 1  # the frame waiting with END is not lost
    assert q.get(timeout=0.1) is END
    assert q.get(timeout=0.1) is END
    assert q.dropped == 0


def test_latest_queue_wakes_a_waiting_reader():
    q = LatestQueue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=5)))
    t.start()
    q.put("x")
    t.join(5)
    assert got == ["x"]


def test_fifo_queue_blocks_with_timeouts():
    q = FifoQueue(2)
    q.put(1, timeout=0.01)
    q.put(2, timeout=0.01)
    with pytest.raises(Full):
        q.put(3, timeout=0.01)
    assert [q.get(timeout=0.01), q.get(timeout=0.01)] == [1, 2]
    with pytest.raises(Empty):
        q.get(timeout=0.01)
    assert q.dropped == 0
    with pytest.raises(ValueError):
        FifoQueue(0)


def test_fan_out_and_in_keep_the_order_across_workers():
    from livebokeh.queues import FanIn, FanOut

    ins = [FifoQueue(2), FifoQueue(2)]
    fan_out, fan_in = FanOut(ins), FanIn(ins)
    for i in range(4):
        fan_out.put(i, timeout=0.1)  # 0, 2 -> queue 0; 1, 3 -> queue 1: both full now
    with pytest.raises(Full):
        fan_out.put(4, timeout=0.01)
    assert [fan_in.get(timeout=0.1) for _ in range(2)] == [0, 1]
    fan_out.put(4, timeout=0.1)  # the retry goes where the turn stayed: queue 0
    assert [fan_in.get(timeout=0.1) for _ in range(2)] == [2, 3]
    fan_out.put(END, timeout=0.1)
    assert [fan_in.get(timeout=0.1) for _ in range(2)] == [4, END]
    assert fan_in.dropped == 0


def test_fan_out_end_is_not_repeated_after_a_full_queue():
    from livebokeh.queues import FanIn, FanOut

    ins = [FifoQueue(1), FifoQueue(1)]
    fan_out = FanOut(ins)
    fan_out.put("a", timeout=0.1)  # queue 0 full
    with pytest.raises(Full):
        fan_out.put(END, timeout=0.01)  # queue 0 has no room for END
    assert ins[0].get(timeout=0.1) == "a"
    fan_out.put(END, timeout=0.1)  # the retry
    assert ins[0].get(timeout=0.1) is END and ins[1].get(timeout=0.1) is END
    with pytest.raises(Empty):
        ins[1].get(timeout=0.01)
    assert FanIn(ins).dropped == 0


def test_in_order_gives_back_results_in_the_order_started():
    from livebokeh.queues import InOrder

    order = InOrder(key=lambda item: item[0])
    for n in (5, 6, 7, 8):  # frame indexes need not start at 0
        order.started((n, "frame"))
    assert order.in_flight == 4
    assert order.finished((7, "seven")) == []  # 5 and 6 are not back yet
    assert order.finished((5, "five")) == [(5, "five")]
    assert order.finished((8, "eight")) == []
    assert order.finished((6, "six")) == [(6, "six"), (7, "seven"), (8, "eight")]
    assert order.in_flight == 0
