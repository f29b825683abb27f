"""GUI-free core of KD Studio: every pipeline stage as a generator of typed events.

Nothing in this package imports PySide6, pyqtgraph or kdstudio.gui; heavy libraries
(torch, transformers, anthropic) are imported inside the functions that need them.

The pipeline, stage by stage (lower stages never import higher ones; import-linter checks it)::

    data/        import files (readers, column guessing, splits), create a project, augment
    teachers/    the Teacher protocol (base.py), the registry, local teachers (embed, hf, lm), recorded
                 and Claude (claude/: prompt, one request, the real-time and batch lanes)
    harvest/     ask a teacher about every pending example; calibrate a verbalized teacher;
                 import recorded completions as a teacher's answers
    students/    the student registry, presets, pretrained students, size and speed
    train/       the loop, the session, checkpoints, tasks, losses, data, the result
    predict.py   a student's predictions and the one KL; calibration.py: ECE and calibration
    generate.py  a causal LM writing completions (greedy; the one routine eval, cascade and export use)
    text_metrics.py  generation's scores: ROUGE-L, chrF, BLEU, exact match, length ratio
    evaluate/    the report, metrics, cascade, speed, golden set, the comparison and dashboard data
    export/      ONNX and Hugging Face exports with their parity check, the comparison export
    demo.py, train_sweep.py, doctor.py   whole-pipeline jobs and the install check
    generation_sample.py   the E2E generation sample's project (data and recorded teacher)
    store/       the project file (SQLite): schema, examples, outputs, runs, reviews
    events.py    the typed events and JobResult every job yields; errors.py, paths.py, threads.py
"""
