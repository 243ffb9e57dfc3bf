"""``python -m loopml_cli``: the same as the ``loopml`` command."""

from loopml_cli.main import main

main()
