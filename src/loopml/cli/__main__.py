"""``python -m loopml.cli`` runs the ``loopml`` command (useful where the script is not on PATH)."""

from loopml.cli import main

main()
