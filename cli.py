"""`python cli.py ...`: the command line lives in the `cli/` package (this file only starts it)."""

from cli import app

if __name__ == "__main__":
    app()
