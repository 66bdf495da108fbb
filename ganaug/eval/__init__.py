"""How good a generator is.

- :mod:`~ganaug.eval.metrics`: class fidelity, Fréchet distance, precision/recall, memorization (arrays in);
- :mod:`~ganaug.eval.report`: all of them on one generator, beside the real-vs-real floors;
- :mod:`~ganaug.eval.cas`: the classification accuracy score and its real-data ceiling.
"""
