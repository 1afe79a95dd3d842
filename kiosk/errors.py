"""One exception hierarchy for the kiosk.

Each class also subclasses the matching builtin (as gpiozero's ``exc.py``
does), so callers can catch either.  ``exit_code`` is what the command line
exits with; every code is distinct so scripts can tell failures apart.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base class of every error the kiosk raises on purpose."""

    exit_code = 1


class ConfigError(KioskError, ValueError):
    exit_code = 2


class ImageReadError(KioskError, OSError):
    """A file could not be opened or decoded as an image."""

    exit_code = 3


class ImageFormatError(KioskError, ValueError):
    """An image decoded, but its shape or depth cannot be used."""

    exit_code = 4


class NoFaceError(KioskError, LookupError):
    exit_code = 5


class ModelMissingError(KioskError, FileNotFoundError):
    exit_code = 6


class ModelIntegrityError(KioskError, ValueError):
    """A model file's sha256 differs from its manifest."""

    exit_code = 7


class RuntimeMissingError(KioskError, ImportError):
    """No TFLite runtime, or a requested delegate library, is installed."""

    exit_code = 8


class FetchError(KioskError, OSError):
    """An artifact could not be downloaded or failed its hash check."""

    exit_code = 9


class DatasetError(KioskError, ValueError):
    """An evaluation or calibration set is empty or malformed."""

    exit_code = 10


class ConversionError(KioskError, RuntimeError):
    exit_code = 11


class OutputError(KioskError, OSError):
    """Results could not be written out (standard output closed, or its disk full)."""

    exit_code = 12
