"""A second factor beside the face: PIN verifiers, schedule policy, lockout, and the claims the decision uses."""

from kiosk.factor.second import Claim, PinResult, SecondFactor

__all__ = ["Claim", "PinResult", "SecondFactor"]
