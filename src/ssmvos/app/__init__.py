"""``ssmvos app``: a local web app to segment your own video (optional extra ``[app]``).

:mod:`.session` holds one browser session's video, masks, results and job (no HTTP);
:mod:`.server` wires HTTP routes to sessions (Starlette); :mod:`.tools` has GrabCut;
``static/`` is the page (plain JavaScript, no network access needed).
"""
