"""What to train and how to read the results: the report's experiments.

- ``cv``: k-fold cross-validation of a grid, for one activation × optimizer pair;
- ``sweeps``: cross-validation of every pair, saved as a job (the report's Table I);
- ``reproduce`` / ``studies``: every pair trained R times (Fig. 2 and 3), saved as a job;
- ``ablation``: Table I under each convention the report leaves unstated, saved as a job;
- ``race``: up to nine runs trained side by side, live.
"""
