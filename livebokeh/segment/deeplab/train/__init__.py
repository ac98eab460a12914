"""Train livebokeh's DeepLab-v3+ decoder for people: ``python -m livebokeh.segment.deeplab.train``.

On top of Google's released DeepLab-v3 MobileNetV2 (backbone and ASPP frozen; the ASPP trained too
with ``--train-aspp``) the v3+ decoder learns two classes, background and person, from Robust
Video Matting's mattes (distillation) on the MIT-licensed clips and portraits of the evaluation
data, augmented. Stages, each cached in the work folder (``--work``) and skipped when its inputs
and settings are unchanged:

1. ``teacher`` (:mod:`.data`): RVM at its best settings on the clips; sampled frames and mattes.
2. ``features`` (:mod:`.features`): each training picture made into augmented variants, run once
   through the released network cut at the decoder's inputs (the TFLite graph, as the CPU path
   runs it); features stored as float16 on disk.
3. ``fit`` (:mod:`.fit`): the decoder trained on those features (JAX), on crops around the
   person's edge, with fixed seeds; its weights written.
4. ``evaluate`` (:mod:`.evaluate`): the validation clips and held-out portraits, v3+ against
   v3, MediaPipe and RVM; the figures go into the report beside the weights.

Everything it drew, used and measured goes into ``<out>.json`` (settings, files, seeds, loss curve,
figures) and the log.
"""
