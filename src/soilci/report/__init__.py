"""The PR report: compare this run's benchmark metrics with a base revision, decide, render once.

``write.write_report(repo, base, out_dir)`` is the entry point; it reads both sides (``inputs``), the
drift gate's result (``drift``) and the last run's record (``runs``), compares them (``compare``), decides
(``verdict``), draws the images (``plots``), gathers the facts (``context``), builds one document
(``document``) and writes it as Markdown and HTML (``render``).
"""
