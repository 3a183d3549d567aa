import sys

from symbol_pipeline.cli.main import main

sys.exit(main())
