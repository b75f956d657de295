"""The kinds of saved job, declared once: what ``minidl run-job``, the app's pages and
retention know."""

from .ablation import ABLATION
from .studies import STUDY
from .sweeps import SWEEP

KINDS = {kind.name: kind for kind in (SWEEP, STUDY, ABLATION)}
