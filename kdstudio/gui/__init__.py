"""The desktop application: the only package that imports PySide6 and pyqtgraph.

Every long job runs a ``kdstudio.core`` generator in :mod:`kdstudio.gui.worker`; widgets hold
no pipeline logic. Start it with ``kdstudio`` or ``kdstudio PROJECT``.

The screens, in the order a person meets them::

    app.py, main_window.py      the window: menus, recent projects, the status bar, the job host
    welcome.py                  the first screen (How it works, New, Open, Open sample project)
    wizard.py                   New project: data_page.py (files, preview, columns),
                                data_plan.py (where every row goes),
                                teacher_picker.py + claude_options.py, student_picker.py,
                                config_form.py (settings read off the jobs' typed configs)
    project_view.py             one project's tabs:
      Overview                    (project_view.py) counts, runs, the next step
      Harvest                     harvest_panel.py, harvest_estimate.py (cost), harvest_failures.py,
                                  harvest_recent.py (a generation teacher's latest completions),
                                  harvest_dialogs.py (teacher, variants), harvest_augment.py (adding
                                  variants)
      Training                    training_panel.py, plots.py + metric_series.py (live curves)
      Evaluate                    evaluate/ (dashboard, cards, generation_cards, Pareto, sweep dialog,
                                  export dialog)
      Compare                     compare/ (classification: table, heatmap, detail and review, filters,
                                  labels; generation: generation_viewer, generation_table with its
                                  filters, generation_detail with the word diff; common: both)

Shared pieces: worker.py and job_host.py (running core jobs off the Qt thread), failure_banner.py
(a failed job's one-line reason and its fix), widgets.py, wheel_guard.py, theme.py, icons.py,
settings.py (QSettings), screenshots.py (the README's pictures), qtcompat.py.
"""

from kdstudio.gui import qtcompat as _qtcompat  # noqa: F401 - patches a PySide6 6.12 bug on import
