"""Data only: ``manifest.yaml`` lists every model facegate uses (read by edge.manifest)."""
