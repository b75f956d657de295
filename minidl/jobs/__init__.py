"""Saved jobs: the store they live in, the tasks they are cut into, how those run.

- ``limits``: the server's limits (environment variables, local and public defaults);
- ``store``: saved jobs, their status, progress and results;
- ``tasks``: checkpointable slices of a job, run on threads here or on a Dask cluster;
- ``runner``: a job trained in this process, and the scheduler of job processes.
"""

from .store import *  # noqa: F403  (the saved-job API, as ``minidl.jobs``)
