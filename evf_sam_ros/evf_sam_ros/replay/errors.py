"""Exceptions of the replay tool. Each message says what was wrong and what to do."""


class ReplayError(Exception):
    """The replay cannot run: unreadable bag, missing topic, bad option (CLI exit code 2)."""


class BagReadError(ReplayError):
    """Reading the bag failed part-way (truncated or corrupt storage)."""


class MessageError(ReplayError):
    """One message cannot be used (corrupt bytes, unsupported encoding); the frame is skipped.

    ``kind`` names the warning the report counts it under, e.g. ``"corrupt_message"``.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
