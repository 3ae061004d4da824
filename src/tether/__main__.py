"""`python -m tether`: the command line (see `tether.cli`)."""

from tether.cli import main

if __name__ == "__main__":
    main()
