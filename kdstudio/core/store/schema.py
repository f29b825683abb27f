"""The project file's schema, as an ordered list of migrations.

``PRAGMA user_version`` holds the number of migrations applied. A new table or column is a
new SQL script appended to ``MIGRATIONS``; existing ones are never edited once released.
"""

from __future__ import annotations

import sqlite3

_V1 = """
        CREATE TABLE project (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            name TEXT NOT NULL,
            task TEXT NOT NULL CHECK (task IN ('classification', 'generation')),
            created TEXT NOT NULL,
            app_version TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,            -- 0-based; the index into probability vectors
            name TEXT NOT NULL UNIQUE,
            description TEXT
        );
        CREATE TABLE examples (
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL,
            label INTEGER REFERENCES labels(id),
            reference TEXT,                    -- generation: the gold completion, when given
            split TEXT NOT NULL CHECK (split IN ('train', 'valid', 'test', 'unlabeled')),
            source TEXT,
            line INTEGER,
            hash TEXT NOT NULL,
            UNIQUE (split, hash)
        );
        CREATE INDEX examples_split ON examples (split, label);
        CREATE TABLE teachers (
            id INTEGER PRIMARY KEY,
            spec TEXT NOT NULL,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            fingerprint TEXT NOT NULL UNIQUE,
            settings TEXT NOT NULL DEFAULT '{}',
            state BLOB,                        -- fitted parts (an embedding probe), so reruns agree
            created TEXT NOT NULL
        );
        CREATE TABLE teacher_outputs (
            example INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            teacher INTEGER NOT NULL REFERENCES teachers(id) ON DELETE CASCADE,
            probs TEXT,                        -- JSON list, indexed by labels.id
            label INTEGER REFERENCES labels(id),
            confidence REAL,
            completion TEXT,
            rationale TEXT,
            method TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_ms REAL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            created TEXT NOT NULL,
            PRIMARY KEY (example, teacher)
        );
        CREATE INDEX teacher_outputs_teacher ON teacher_outputs (teacher, status);
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,               -- the Anthropic batch id
            teacher INTEGER NOT NULL REFERENCES teachers(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            request_count INTEGER NOT NULL,
            created TEXT NOT NULL,
            ended TEXT
        );
        CREATE TABLE batch_requests (
            custom_id TEXT PRIMARY KEY,
            batch TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
            example INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            teacher INTEGER NOT NULL REFERENCES teachers(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'pending'
        );
        CREATE INDEX batch_requests_batch ON batch_requests (batch, status);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            name TEXT,
            student TEXT NOT NULL,
            teacher INTEGER REFERENCES teachers(id),
            config TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'cancelled', 'failed')),
            started TEXT,
            finished TEXT,
            best_checkpoint TEXT,
            last_checkpoint TEXT,
            parent_run INTEGER REFERENCES runs(id),
            summary TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE TABLE metrics (
            run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            epoch REAL NOT NULL DEFAULT 0,
            wall_s REAL NOT NULL DEFAULT 0,
            name TEXT NOT NULL,
            value REAL NOT NULL
        );
        CREATE INDEX metrics_run ON metrics (run, name, step);
        CREATE TABLE predictions (
            run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            example INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            probs TEXT,
            label INTEGER REFERENCES labels(id),
            confidence REAL,
            margin REAL,
            entropy REAL,
            kl REAL,                           -- KL(teacher || student) for this example
            completion TEXT,
            latency_ms REAL,
            PRIMARY KEY (run, example)
        );
        CREATE INDEX predictions_kl ON predictions (run, kl);
        CREATE TABLE evaluations (
            run INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            report TEXT NOT NULL
        );
        CREATE TABLE reviews (
            example INTEGER PRIMARY KEY REFERENCES examples(id) ON DELETE CASCADE,
            corrected_label INTEGER REFERENCES labels(id),
            exclude INTEGER NOT NULL DEFAULT 0,
            golden INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            created TEXT NOT NULL
        );
"""

# The comparison viewer: a run's predictions beside one teacher's answers, denormalised into one
# narrow table with an index per sort key, so a page, a filter change or a count on a large run
# reads an index instead of joining every row. ``compare_cache`` marks which (run, teacher) pairs
# are built; triggers drop the mark (and, by cascade, the rows) when predictions, teacher answers
# or gold labels change, and the store rebuilds it on the next query.
_V2 = """
        CREATE TABLE compare_cache (
            run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            teacher INTEGER NOT NULL,          -- 0: the run has no teacher
            built TEXT NOT NULL,
            rows INTEGER NOT NULL,
            PRIMARY KEY (run, teacher)
        );
        CREATE TABLE compare_rows (
            run INTEGER NOT NULL,
            teacher INTEGER NOT NULL,
            example INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            student_label INTEGER,
            teacher_label INTEGER,
            gold INTEGER,
            disagree INTEGER NOT NULL,         -- 1: both answered and the top-1 labels differ
            confidence REAL,
            teacher_confidence REAL,
            margin REAL,
            entropy REAL,
            kl REAL,
            PRIMARY KEY (run, teacher, example),
            FOREIGN KEY (run, teacher) REFERENCES compare_cache (run, teacher) ON DELETE CASCADE
        );
        CREATE INDEX compare_rows_kl ON compare_rows (run, teacher, kl, example);
        CREATE INDEX compare_rows_margin ON compare_rows (run, teacher, margin, example);
        CREATE INDEX compare_rows_entropy ON compare_rows (run, teacher, entropy, example);
        CREATE INDEX compare_rows_confidence ON compare_rows (run, teacher, confidence, example);
        CREATE INDEX compare_rows_cell ON compare_rows (run, teacher, student_label, teacher_label, example);
        CREATE INDEX compare_rows_disagree ON compare_rows (run, teacher, disagree, kl, example);
        CREATE TRIGGER compare_stale_on_prediction_insert AFTER INSERT ON predictions
            BEGIN DELETE FROM compare_cache WHERE run = NEW.run; END;
        CREATE TRIGGER compare_stale_on_prediction_update AFTER UPDATE ON predictions
            BEGIN DELETE FROM compare_cache WHERE run IN (OLD.run, NEW.run); END;
        CREATE TRIGGER compare_stale_on_prediction_delete AFTER DELETE ON predictions
            BEGIN DELETE FROM compare_cache WHERE run = OLD.run; END;
        CREATE TRIGGER compare_stale_on_output_insert AFTER INSERT ON teacher_outputs
            BEGIN DELETE FROM compare_cache WHERE teacher = NEW.teacher; END;
        CREATE TRIGGER compare_stale_on_output_update AFTER UPDATE ON teacher_outputs
            BEGIN DELETE FROM compare_cache WHERE teacher IN (OLD.teacher, NEW.teacher); END;
        CREATE TRIGGER compare_stale_on_output_delete AFTER DELETE ON teacher_outputs
            BEGIN DELETE FROM compare_cache WHERE teacher = OLD.teacher; END;
        CREATE TRIGGER compare_stale_on_gold_update AFTER UPDATE OF label ON examples
            WHEN OLD.label IS NOT NEW.label
            BEGIN DELETE FROM compare_cache; END;
"""

# Predictions now cover the transfer set too (train, unlabeled), so the viewer can show where
# the student parts from the teacher on the data it learned from; its rows carry their split.
_V3 = """
        ALTER TABLE compare_rows ADD COLUMN split TEXT;
        DELETE FROM compare_cache;
        CREATE INDEX compare_rows_split ON compare_rows (run, teacher, split, kl, example);
"""

# Calibrations of a teacher's verbalized distributions (kdstudio.core.calibration), numbered per
# teacher; and a k-sample answer's parts (mean verbalized distribution, vote frequencies), so that a
# calibration applies to the verbalized part before the two are mixed.
_V4 = """
        CREATE TABLE calibrations (
            teacher INTEGER NOT NULL REFERENCES teachers(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            fit TEXT NOT NULL,                 -- JSON: the Calibration's fields
            created TEXT NOT NULL,
            PRIMARY KEY (teacher, version)
        );
        ALTER TABLE teacher_outputs ADD COLUMN components TEXT;
"""

# Generation: every reference a prompt has (E2E has up to 45 per meaning representation; the
# ``examples.reference`` column keeps the first, for readers that want one); a person's corrected
# completion, which replaces the teacher's in the next run; and a prediction's scores (JSON:
# ``{"teacher": {metric: value}, "references": {metric: value}}``) with ``score``, the one number the
# comparison viewer sorts by (ROUGE-L against the teacher's completion, else against the references).
_V5 = """
        CREATE TABLE example_references (
            example INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,         -- 0: the first reference the import saw
            text TEXT NOT NULL,
            PRIMARY KEY (example, position)
        );
        INSERT INTO example_references (example, position, text)
            SELECT id, 0, reference FROM examples WHERE reference IS NOT NULL;
        ALTER TABLE reviews ADD COLUMN corrected_completion TEXT;
        ALTER TABLE predictions ADD COLUMN scores TEXT;
        ALTER TABLE predictions ADD COLUMN score REAL;
        CREATE INDEX predictions_score ON predictions (run, score);
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this file lacks, each in its own transaction; return the version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
