"""J&F scoring: metrics over arrays (:mod:`.metrics`), folders -> figures (:mod:`.score`),
table/JSON/CSV output (:mod:`.report`)."""
from .metrics import boundary_f, db_statistics, frame_scores, jaccard, seg2bmap
from .report import format_table, write_csv, write_json
from .score import score_folder

__all__ = ["score_folder", "format_table", "write_json", "write_csv",
           "jaccard", "boundary_f", "frame_scores", "seg2bmap", "db_statistics"]
