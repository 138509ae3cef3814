"""Training of the SR networks (``python -m repro train``); the patch data and its resumable order are in data.py."""
