"""Data import: CSV, TSV, JSONL, Parquet and the raw layouts of common text data sets."""

from kdstudio.core.data.create import (
    CreateResult,
    DataFile,
    FileSplits,
    Problem,
    check_splits,
    create_project,
    plan_project,
)
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

__all__ = ["FORMATS", "CreateResult", "DataFile", "FileSplits", "ImportResult", "Preview", "Problem",
           "check_splits", "create_project", "detect_columns", "import_file", "plan_project", "preview",
           "preview_job", "sniff_format", "text_hash"]
