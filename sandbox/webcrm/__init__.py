"""A local simulator of the webCRM REST API (https://api.webcrm.com), see docs/sandbox-webcrm.md.

`create_app(**options)` (sandbox.webcrm.app) builds a Flask app; `python -m sandbox.webcrm` serves one.
"""
