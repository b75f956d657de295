"""What goes wrong with saved jobs, for every module of ``minidl.jobs`` to raise and catch."""


class Damaged(ValueError):
    """Saved data does not hold what it should; the message says which and why."""


class StoreError(Damaged):
    """The store cannot be opened or read (not a database, a newer minidl's, unreachable)."""
