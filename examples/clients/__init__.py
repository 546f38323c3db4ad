"""One small reference client per provider; each passes every applicable conformance check.

Run one against the mock with ``veomock check --provider NAME -- python -m examples.clients.NAME``.
"""
