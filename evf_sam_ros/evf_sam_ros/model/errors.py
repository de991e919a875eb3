"""Exceptions of the model core. Each message says what was wrong and what to do."""


class EvfSamError(Exception):
    """Base class of every error the model core raises on purpose."""


class CheckpointError(EvfSamError):
    """A checkpoint is missing, unreadable, corrupt or does not fit the model."""


class HubUnavailableError(CheckpointError):
    """A hub id was given but the hub cannot be reached (offline machine, firewall)."""


class VariantError(EvfSamError, ValueError):
    """An unknown checkpoint variant, SAM type or scale was named."""


class InputImageError(EvfSamError, ValueError):
    """The image is not something the model can segment (dtype, shape, size)."""


class PromptError(EvfSamError, ValueError):
    """The text prompt is empty, unprintable or longer than the model accepts."""


class TargetError(EvfSamError, LookupError):
    """A tracked target id that does not exist (never added, or already removed)."""


class ClickError(EvfSamError, ValueError):
    """A correction click was refused; ``kind`` says why, as a stable key.

    Kinds: ``click_unknown_target`` (no tracked target with that id),
    ``click_outside_image`` (a point outside the clicked image), ``click_frame_not_held``
    (the clicked frame is no longer held, or none yet), ``click_invalid`` (no points, a
    label other than 0/1, points and labels of different lengths, non-finite coordinates),
    ``click_not_tracking`` (clicks need track mode with a held frame count > 0),
    ``click_backend`` (the model runs exported graphs, which take no points).
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class BackendUnavailableError(VariantError):
    """A runtime backend (onnxruntime, TensorRT) is not installed or cannot run here."""
