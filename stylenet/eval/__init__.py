"""Held-out measures shared by evaluate, the gallery and bench."""
