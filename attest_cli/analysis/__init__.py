"""``attest analyze``: detect what a file is, summarise it, render it in a chosen format.

``detect`` says what a file is by its content; ``subject`` loads it (and the run a profile
is linked to); ``steps``, ``cpu_profile`` and ``memory_capture`` compute the answers a
report leads with; one module per output format registers its renderers in ``registry``.
"""
