"""The formats of ``attest analyze``: each renders a loaded file (a ``Subject``).

What a report says is computed in :mod:`attest_cli.analysis` (detection, loading, the
answers); these modules only lay it out, one module per format.
"""
