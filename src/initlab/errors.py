"""The error of every bad user input, at the bottom of the import graph so every layer can raise it.

``initlab.config`` (validation) sits above ``initlab.training`` and may import it; ``training``
raises this error without importing the validation layer.
"""

MAX_MESSAGE = 400


class ConfigError(ValueError):
    """A config value that cannot work: one line naming the key, the value and what is allowed."""

    def __init__(self, message: str) -> None:
        line = " ".join(str(message).split())
        super().__init__(line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "...")
