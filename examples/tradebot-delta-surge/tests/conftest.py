import sys
from pathlib import Path

# The example is also tested from the tradebot checkout, where it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
