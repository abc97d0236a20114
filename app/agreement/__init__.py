"""Inter-annotator agreement: pure numpy functions, see :mod:`app.agreement.metrics`."""
