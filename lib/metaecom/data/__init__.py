"""Datasets: a checksum-verified registry of files (mirror, cache, official download) and their loaders."""
