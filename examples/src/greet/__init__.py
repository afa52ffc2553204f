"""A tiny package for the bundled attest example."""


def greet(name: str) -> str:
    return f"hello, {name}"
