"""Measures of music that training and evaluation share, beneath both (bench/import_layers.py):

- ``music_features``  notes -> 30 s windows -> a feature vector (identical for real and generated music)
- ``realism``         the realism features, the real-vs-generated classifier's AUC, per-feature gaps
- ``adherence``       does the generated music follow the control asked (key, density, loudness, ...)
"""
