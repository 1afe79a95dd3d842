"""Face-unlock access-control kiosk."""

__version__ = "0.1.0"
