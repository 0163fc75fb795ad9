"""``python -m streams ...`` is the ``dampak`` command."""

from streams.cli import main

if __name__ == "__main__":
    main()
