import sys

from midm.cli import main

sys.exit(main())
