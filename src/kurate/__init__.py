"""kurate: curated, German-first multilingual pre-training data from Common Crawl, and the
tokenizer-free models trained on it. See docs/ARCHITECTURE.md for the layers and the data flow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kurate")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+source"
