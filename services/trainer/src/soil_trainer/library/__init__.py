"""The spectral library: read a lab's files, normalise them to the canonical form, store and load batches.

See ``soil_contracts.library`` for the layout and docs/LIBRARY.md for the user's side.
"""
