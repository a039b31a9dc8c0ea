"""The spectral library verbs: import a lab's file as a batch, list the library, build the demo library."""
