"""A whole collection: ``render FOLDER --out OUT`` for thousands of images, resumable, on one core or many.

- ``job``: the job (settings, models, images) and each image's work key (what makes a result reusable);
- ``store``: atomic writes, the append-only journal that makes a run resumable, the one-writer lock;
- ``renderer``: a worker's models and the batched render of a list of images (no Ray here);
- ``cluster``: the Ray actors that hold a ``Renderer`` each, and the dispatch of batches to them;
- ``run``: the driver: what is done already, what to send, writing results, the catalogue, the gallery;
- ``catalogue``: ``OUT/catalogue.csv`` and its JSON Lines twin;
- ``progress``: a bar on a terminal, a line now and then in a log;
- ``gallery``: the static, accessible listening page ``OUT/index.html``;
- ``options``: the ``render`` options this package adds, and their checks.

Only ``cluster`` imports Ray, and only when more than one worker (or a cluster address) is asked for.
"""
