"""Security policy: the embedder's score model, the threshold it implies, the margin rule, templates.

Pure numpy and Python; the tables are data shipped beside the code.
"""

from kiosk.policy.config import PolicyConfig, level_for, load_model
from kiosk.policy.margin import Outcome, Verdict, decide
from kiosk.policy.scoremodel import ScoreModel, ScoreTableError, default_model
from kiosk.policy.threshold import DEFAULT_TARGET, Level, derive, explicit, per_comparison_far

__all__ = ["DEFAULT_TARGET", "Level", "Outcome", "PolicyConfig", "ScoreModel", "ScoreTableError", "Verdict",
           "decide", "default_model", "derive", "explicit", "level_for", "load_model", "per_comparison_far"]
