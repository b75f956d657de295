"""Saved jobs: the store they live in, the tasks they are cut into, how those run.

- ``limits``: the server's limits (environment variables, local and public defaults);
- ``store``: one database of jobs, rows and checkpoints (SQLite, or a server's by URL);
- ``locks``: one process trains a job, one server's line holds it while it waits;
- ``errors``: what goes wrong with saved jobs (``Damaged``, ``StoreError``);
- ``rows``: result tables checked column by column, from the store or a CSV file;
- ``kind``: what a kind of job is, and one saved job as a kind reads and writes it;
- ``saved``: create, find, list, size, import and retire jobs (re-exported here);
- ``tasks``: checkpointable slices of a job, run on threads here or on a Dask cluster;
- ``runner``: a job trained in this process; ``scheduler``: the app's job processes.
"""

from .kind import COUNTS, RESULTS_ENV, Kind, Saved, check_counts, part_name, part_pair, results_root
from .rows import check_columns, frame, read_rows, read_table
from .saved import *  # noqa: F403  (the saved-job API)
from .saved import __all__ as _saved

__all__ = ["COUNTS", "RESULTS_ENV", "Kind", "Saved", "check_columns", "check_counts", "part_name",
           "frame", "part_pair", "read_rows", "read_table", "results_root", *_saved]
