"""Data import: CSV, TSV, JSONL, Parquet and the raw layouts of common text data sets."""

from kdstudio.core.data.importer import detect_columns, import_file, preview, text_hash
from kdstudio.core.data.readers import FORMATS, sniff_format

__all__ = ["FORMATS", "detect_columns", "import_file", "preview", "sniff_format", "text_hash"]
