import cv2

from livebokeh.threads import ThreadPlan, cpu_cores, opencv_threads, plan_threads


def test_few_cores_get_one_thread_per_library():
    assert plan_threads(0, cores=2) == ThreadPlan(inference=1, opencv=1, workers=2, encoder=2, heavy_model_workers=2,
                                                  ordered_model=2)
    assert plan_threads(0, cores=4) == ThreadPlan(inference=1, opencv=1, workers=4, encoder=4, heavy_model_workers=2,
                                                  ordered_model=4)
    assert plan_threads(0, cores=16) == ThreadPlan(inference=2, opencv=0, workers=16, encoder=16, heavy_model_workers=2,
                                                   ordered_model=4)
    assert plan_threads(0, cores=1).heavy_model_workers == 1
    assert plan_threads(0, cores=1).ordered_model == 1
    assert plan_threads(3, cores=2).inference == plan_threads(3, cores=2).ordered_model == 3  # an explicit setting wins
    assert cpu_cores() >= 1


def test_opencv_threads_are_restored():
    before = cv2.getNumThreads()
    with opencv_threads(ThreadPlan(inference=1, opencv=1)):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before
    with opencv_threads(ThreadPlan(inference=2, opencv=0)):  # 0 = leave it
        assert cv2.getNumThreads() == before


def test_only_a_heavy_stateless_model_runs_on_several_threads():
    from livebokeh.types import SegmenterTraits

    heavy, light = SegmenterTraits(heavy=True), SegmenterTraits()
    plan = plan_threads(0, cores=2)
    assert plan.segment_workers(heavy) == 2
    assert plan.segment_workers(light) == 1
    assert plan.segment_workers(SegmenterTraits(heavy=True, stateful=True)) == 1  # its memory follows one stream
    assert plan_threads(0, cores=1).segment_workers(heavy) == 1  # nothing to share it with
