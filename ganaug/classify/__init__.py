"""The small classifiers ganaug trains beside its GANs, for the data's sake rather than the generator's.

- :mod:`~ganaug.classify.evaluator`: the evaluation CNN and its folder (``ganaug evaluator train``): it scores
  generators and, as a label check, decides which generated images are kept;
- :mod:`~ganaug.classify.classifier`: the fixed classifier recipe (CAS, the pseudo-label teacher, the downstream
  benchmark);
- :mod:`~ganaug.classify.manifold`: the real manifold in an evaluator's features, stored in its folder.
"""
