import sys

from competition.report.build import main

sys.exit(main())
