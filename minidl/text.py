"""Text for people: a value quoted in a message, cut short.

A value in a message may come from a URL, a file or a form, and be any length: every
message quotes it through ``cut``, so that one cut — the same "…" at the same length —
serves every message of the package, the command line and the app.
"""

SHORT = 40  # characters of a value quoted in a one-line message


def cut(text: object, limit: int = SHORT) -> str:
    """``text`` (or ``str(text)``) of at most ``limit`` characters, its last one "…" if cut."""
    text = text if isinstance(text, str) else str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"
