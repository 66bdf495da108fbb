"""The real images and what is done to them before any model sees them.

- :mod:`~ganaug.data.sources`: the datasets (digits, MNIST, Fashion-MNIST, an ImageFolder), stratified subsets, the
  training data of a run and its identity;
- :mod:`~ganaug.data.fingerprints`: the official MNIST / Fashion-MNIST files, known by their sha256;
- :mod:`~ganaug.data.labels`: classes, per-class counts, label layouts, uint8 images;
- :mod:`~ganaug.data.augment_ops`: the classical augmentations (random affine, shifts and flips);
- :mod:`~ganaug.data.density`: k-nearest-neighbour distances (how dense the images are around each one).
"""
