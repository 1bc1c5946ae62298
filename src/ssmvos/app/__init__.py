"""``ssmvos app``: a local web app to segment your own video (optional extra ``[app]``).

:mod:`.session` holds one browser session's video, masks, results and job (no HTTP), kept
in a state folder; :mod:`.sessions` all of them (expiry, unloading); :mod:`.server` wires HTTP
routes to sessions (Starlette); :mod:`.network` says who may send what (Host, Origin,
Content-Type, body sizes); :mod:`.files` what may be opened (paths under ``--root``, zips of
frames); :mod:`.exports` the COCO JSON and training-set exports. The box and point tools use
the predictor's GrabCut (:mod:`ssmvos.inference.prompts`). ``static/`` is the page (plain
JavaScript, no network access needed).
"""
