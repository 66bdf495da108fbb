"""Where generated images meet a training loop.

- :mod:`~ganaug.feed.dataset`: ``GeneratedDataset`` (a torchvision dataset of generated images) and
  ``SourceDataset``;
- :mod:`~ganaug.feed.mixing`: ``augment`` and ``draw_synthetic``: real and generated images in one dataset;
- :mod:`~ganaug.feed.batchmix`: ``SyntheticMix``: generated images mixed into each batch, on the batch's device.
"""
