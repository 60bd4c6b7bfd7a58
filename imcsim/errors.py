"""Typed errors. Every message is one line that names the culprit (layer, field, value)."""

__all__ = ["ConfigError", "ImcsimError", "ImcsimWarning", "MappingError", "UnsupportedLayerError"]


class ImcsimError(Exception):
    """Base class of every error imcsim raises on purpose."""


class ConfigError(ImcsimError, ValueError):
    """A configuration, preset, recipe or command-line value is invalid."""


class MappingError(ImcsimError):
    """A layer cannot be placed on the given array."""


class UnsupportedLayerError(ImcsimError):
    """A module or layer kind has no crossbar mapping."""


class ImcsimWarning(UserWarning):
    """Something worked, but not entirely as the chip would (e.g. layers left in float)."""
