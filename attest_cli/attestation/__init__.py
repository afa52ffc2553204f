"""Signed receipts: keys, canonical serialization, receipts, verification and policies.

Nothing here imports ``cryptography`` at module level; signing and verification import it
inside the functions that need it, so ``attest --help`` and unsigned runs stay fast.
"""
