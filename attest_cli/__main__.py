"""Entry point for ``python -m attest_cli``."""

from attest_cli.cli.entry import main

if __name__ == "__main__":
    main()
