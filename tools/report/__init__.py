"""tools/report: decision logs + ground truth -> how well the door decides.

In: the daemon's JSON-lines decision logs (live, rotated, gzipped; schema in
edge.decisions) and the truth of each attempt, from a labels CSV
(``event_id,truth``) or from the NUAA frame paths a replay logged.
Out: the confusion matrix at the logged threshold with 95% intervals, a
threshold sweep (ROC, DET, score histograms), a recommended threshold, and
breakdowns per person, reason and ISO week, as terminal text, HTML, Markdown
and JSON.  ``python -m tools.report review`` labels attempts interactively.

Modules: stats (intervals), labels (truth), collect (streaming the logs into
compact columns); the numbers: confusion (classes, confusion matrix), sweep
(threshold sweep, recommendation), breakdowns (per person, reason, week,
exposure), door_liveness (each liveness cue at this door, its recommended
point), metrics (all of them assembled into a Report); the words: wording
(sentences about the numbers), sections (the report's sections), render (text,
Markdown, HTML), json_report (JSON), plots; review (labelling at the
terminal); __main__ is the command line.
"""

from __future__ import annotations

from edge.errors import DataError


class ReportError(DataError):
    """Bad report input (labels file, arguments): one line naming the file and line or field."""
