"""From real images to a trained generator and its run folder.

- :mod:`~ganaug.train.gan`: the GAN step and its losses (G, D, EMA, optimizers);
- :mod:`~ganaug.train.weighting`: which images an epoch draws (``flatten_density``);
- :mod:`~ganaug.train.trainer`: the Trainer (the loop, resume, logging);
- :mod:`~ganaug.train.runfolder`, :mod:`~ganaug.train.checkpoint`: the files of a run;
- :mod:`~ganaug.train.export`: the run's generator as one verified ONNX file;
- :mod:`~ganaug.train.presets`, :mod:`~ganaug.train.recipe`: the measured recipes;
- :mod:`~ganaug.train.pseudo`: pseudo-labels for an unlabelled pool;
- :mod:`~ganaug.train.distributed`, :mod:`~ganaug.train.hardware`: torchrun and the machine.
"""
