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


class BackendUnavailableError(VariantError):
    """A runtime backend (onnxruntime, TensorRT) is not installed or cannot run here."""
