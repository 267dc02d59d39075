"""The contract between the core and feature plugins: hook specs, feature metadata, the run
context, hidden-layer plan types and the one-line user error.
Imports nothing else of bionic_core."""
