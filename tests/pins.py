"""Checks on gpiozero's mock pins.

``MockPin.assert_states`` zips the pin's history with the expected list, so it compares only the
shorter of the two: ``assert_states([False])`` passes on a relay energised later, and
``assert_states([False, True, False])`` on a door opened twice. A test that claims a pin never moved,
or moved exactly so, uses ``assert_pin_history`` instead.
"""

from __future__ import annotations

from gpiozero.pins.mock import MockPin


def assert_pin_history(pin: MockPin, expected: list[bool]) -> None:
    """The pin went through exactly ``expected`` (its first state is the bare pin's, before any device)."""
    history = [s.state for s in pin.states]
    assert history == expected, f"pin {pin.info.name} went through {history}, expected exactly {expected}"
