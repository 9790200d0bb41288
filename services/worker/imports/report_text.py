"""The import report as a person reads it, one line per fact."""

from collections import Counter

from services.worker.imports.report import ImportReport


def report_lines(report: ImportReport) -> list[str]:
    would = "would be " if report.dry_run else ""
    lines = [
        f"{'dry run, nothing appended: ' if report.dry_run else ''}"
        f"{report.source} import: {report.threads_seen:,} threads read",
        f"threads {would}imported: {report.threads_imported:,}"
        + _by(report.thread_ids_from, "id from"),
        f"threads already there: {report.threads_already_there:,}",
        f"threads skipped: {sum(report.threads_skipped.values()):,}" + _by(report.threads_skipped),
    ]
    lines += [f"  skipped thread {key!r}: {why}" for key, why in report.skipped_thread_keys]
    lines += [
        f"comments {would}imported: {report.comments_imported:,}",
        f"comments already there: {report.comments_already_there:,}",
        f"comments skipped: {sum(report.comments_skipped.values()):,}"
        + _by(report.comments_skipped),
        f"replies whose parent is missing, {would}imported as top-level: "
        f"{report.parents_missing:,}",
        f"replies nested too deep, {would}attached at the deepest level: {report.flattened:,}",
        f"events {would}appended: {report.events_appended:,}",
    ]
    return lines


def _by(counts: Counter[str], label: str = "") -> str:
    if not counts:
        return ""
    parts = ", ".join(f"{reason}: {n:,}" for reason, n in counts.most_common())
    return f" ({label + ' ' if label else ''}{parts})"
