"""Data import: CSV, TSV, JSONL, Parquet and the raw layouts of common text data sets."""

from kdstudio.core.data.create import CreateResult, DataFile, create_project
from kdstudio.core.data.importer import (
    ImportResult,
    Preview,
    detect_columns,
    import_file,
    preview,
    preview_job,
    text_hash,
)
from kdstudio.core.data.readers import FORMATS, sniff_format

__all__ = ["FORMATS", "CreateResult", "DataFile", "ImportResult", "Preview", "create_project", "detect_columns",
           "import_file", "preview", "preview_job", "sniff_format", "text_hash"]
