"""Presentation: Altair chart builders and tables for people, as pure functions.

The only part of ``minidl`` that imports Altair (``live``, ``cv``, ``study``);
``boundary`` draws a model's decision boundary as a PNG, ``replay`` a run's epochs as
a GIF (with Pillow), ``tables`` formats results as text.  Nothing here trains.
"""
