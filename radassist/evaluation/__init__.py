"""Evaluation before go-live: ``radassist eval`` drafts a folder of studies with known reports.

The studies go through exactly the drafting path of the service, in process and without DICOM
networking or the service's database: :func:`radassist.drafting.prepare.prepare_job` (image
selection and rendering, prompt profile), :func:`radassist.drafting.generate.draft_prepared`
(backend, prompt, output checks, parsing), then :func:`radassist.quality.compare_pair` against the
reference report.  In flow order: :mod:`~radassist.evaluation.dataset` (studies and their reference
reports), :mod:`~radassist.evaluation.run` (a resumable run folder, one result file per study),
:mod:`~radassist.evaluation.report` (JSON and a self-contained HTML report),
:mod:`~radassist.evaluation.compare` (two runs side by side, paired differences).
"""
