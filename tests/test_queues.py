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
