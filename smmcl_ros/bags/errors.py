"""Errors of the bag tools; every message names the bag (and topic, where there is one)."""


class BagError(RuntimeError):
    """Base class of the bag errors; the message names the bag."""


class BagOpenError(BagError):
    """The bag (or its storage file) cannot be opened at all."""


class BagReadError(BagError):
    """Reading stopped at a damaged record; every message before it was yielded.

    Attributes:
        messages_read: Messages successfully read before the damage.
    """

    def __init__(self, message: str, messages_read: int) -> None:
        super().__init__(message)
        self.messages_read = messages_read


class UnknownTopicError(BagError):
    """A requested topic is not in the bag; the message lists the bag's topics."""


class MessageDecodeError(ValueError):
    """One serialised message cannot be deserialised (unknown type or corrupt bytes)."""
