"""Profiling ``attest run`` itself: CPU with pyinstrument, memory with memray.

Both profilers are imported only inside the functions that record, so a plain ``attest run``
never loads them.
"""
