"""Drawing images from a trained generator, each one addressed by (seed, index).

- :mod:`~ganaug.sample.latents`: the seeds and latents every sample is drawn from;
- :mod:`~ganaug.sample.resample`: how latents are drawn (temperature, the label check, ``Sampling``);
- :mod:`~ganaug.sample.unflatten`: undoing a run's density weighting (``--unflatten``);
- :mod:`~ganaug.sample.runtime`: fast generation with ONNX Runtime (``OnnxGenerator``);
- :mod:`~ganaug.sample.generators`: opening a generator of either format and drawing from it.
"""
