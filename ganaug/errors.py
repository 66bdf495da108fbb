"""Exceptions ganaug raises on purpose. Each message is one line that says what to do."""


class GanaugError(Exception):
    """Base class of ganaug's own errors."""


class InputError(GanaugError, ValueError):
    """Bad input the user can fix (missing files, unknown names, impossible budgets). The CLI exits 2."""


class TrainingDiverged(GanaugError, RuntimeError):
    """Losses became non-finite; the last good checkpoint is kept. The CLI exits 2."""
