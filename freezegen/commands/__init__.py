"""One module per ``freezegen`` command, each ``run(Options) -> CommandResult``.

A command takes what the command line said as a small dataclass and returns what to print, in
order, with the exit status; it never prints, exits or knows about typer, so a program can call
it as the CLI does. Modules are imported one at a time by the CLI: ``lint`` must not pay for
the heavy imports of the others.
"""
