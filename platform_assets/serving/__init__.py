"""Real-time scoring: the champion behind an HTTP API (app.py), its deployment asset and the prediction log."""
