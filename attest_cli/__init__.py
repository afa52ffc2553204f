"""attest: a local-first pipeline runner whose steps are cached, signed and observable.

This module holds only the version so that ``import attest_cli`` stays cheap.
"""

__version__ = "0.1.0"
