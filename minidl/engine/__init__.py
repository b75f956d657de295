"""The training engine: one loop that trains one network or hundreds as a population.

- ``layers``: the batched network (``minidl.nn``'s modules with a member dimension);
- ``population``: ``Population``, the stepper — the one place that walks minibatches;
- ``run``: ``Run``, a population of one (what the Playground trains);
- ``snapshots``: a run's weights at its epochs' ends, thinned to a few MB, to replay it;
- ``fit``: many members to the end, in memory-bounded populations, pausable and
  resumable (what sweeps, studies and ablations train);
- ``export``: a run as JSON, and as a script that retrains it.
"""
