"""Wire models: the typed shapes of what the public API reads and answers (pydantic v2).

The routes validate request bodies and query strings with these models (`validate.py` turns a
validation failure into our 400 envelope), and `api/openapi/` builds `/openapi.json` from the
same classes, so the published schema cannot drift from what the routes accept. Domain rules
that need the catalog (a model's accepted parameters, its voices, its context) stay in the
domain readers; the wire model states the shape and the bounds that hold for every model.
"""
