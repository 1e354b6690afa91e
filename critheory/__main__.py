import sys

from critheory.cli.main import main

sys.exit(main())
