"""Machine evaluation of the image-to-music models (after Tan & Antony, ICCC 2020).

    python -m installation.evaluation [--models DIR] [--data ../shared/data] [--k 3] [--out DIR]

For each held-out Emotion6 image with a Russell quadrant, K pieces of 30 s are generated
through the shipped ONNX models and judged by classifiers trained only on real,
labelled data:

- ``classifiers``     music-emotion classifier (valence, arousal, quadrant) and the image-music
                      emotion-correspondence classifier
- (the music features, realism and adherence measures are installation/measures/, shared with training)
- ``metrics``         agreement, chance baseline, Spearman, bootstrap intervals, shuffled control, overlap area
- ``quality``         generated vs held-out real music, feature by feature
- ``pipeline``        the run; ``report`` and ``plots`` write the report folder

Training-side code: it may import torch/sklearn; nothing in the runtime imports it.
"""
