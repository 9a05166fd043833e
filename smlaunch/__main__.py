import sys

from smlaunch.cli import main

sys.exit(main())
