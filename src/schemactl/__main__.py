"""Allow ``python -m schemactl``."""

from schemactl.entry import main

main()
