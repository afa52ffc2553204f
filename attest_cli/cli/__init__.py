"""The Typer layer: parse options, call one core function, render the result. No logic."""
