import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", default=None,
                     help="backend(s) for test_conformance.py (NAME or NAME[key=value,...]); default: all available")
