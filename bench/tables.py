"""BENCHMARKS.md's result tables, written from the newest result per scale factor in bench/results/: the whole
flow by stage, the all-Spark peer beside it, and the incremental scenario. bench/run.py measures; this writes.
Also how every bench script saves its result and prints its markdown table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
BENCHMARKS_MD = PROJECT_ROOT / "BENCHMARKS.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def latest_results(scenario: str = "full") -> list[dict[str, object]]:
    """The newest result per scale factor of one scenario: "full" (the whole flow) or "increment"."""
    newest: dict[int, dict] = {}
    for path in sorted(RESULTS_DIR.glob("sf*.json")):  # bench/run.py's; the other benches' files are named apart
        result = json.loads(path.read_text())
        if result.get("scenario", "full") != scenario:
            continue
        key = result["scale_factor"]
        if key not in newest or result["measured_at"] >= newest[key]["measured_at"]:
            newest[key] = result
    return [newest[key] for key in sorted(newest)]


def save_result(kind: str, result: dict[str, object]) -> Path:
    """Writes a bench script's result as bench/results/<kind>-<UTC time>.json, stamped with when it was measured."""
    now = datetime.now(UTC)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{now:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps({"measured_at": now.isoformat(timespec="seconds"), **result}, indent=2))
    return path


def markdown_table(header: list[str], rows: list[list[str]], right_aligned_from: int | None = None) -> str:
    """A markdown table; columns from `right_aligned_from` on (none by default) hold numbers and align right."""
    aligned = len(header) if right_aligned_from is None else right_aligned_from
    rule = "|" + "".join("---|" if index < aligned else "---:|" for index in range(len(header)))
    header_line, *lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
    return "\n".join([header_line, rule, *lines])


def results_table(results: list[dict[str, object]]) -> str:
    stage_names = ["sample", "prep", "load", "build", "validate", "publish", "train", "score", "report"]
    header = ["run", "flights", "whole flow (s)", "CPU (s)", "peak RSS (GiB)", *stage_names, "test AUC",
              "baseline AUC", "machine", "measured"]
    rows = []
    for result in results:
        stages = {stage["name"]: stage["seconds"] for stage in result.get("stages", [])}
        flow = result["flow"]
        rows.append([
            f"SF={result['scale_factor']}",
            f"{result['generated']['flight_rows']:,}",
            f"{flow['wall_seconds']:.1f}",
            f"{flow['cpu_seconds']:.1f}",
            f"{flow['peak_rss_mib'] / 1024:.2f}",
            *[f"{stages[name]:.1f}" if name in stages else "" for name in stage_names],
            f"{result['test_roc_auc']:.4f}",
            f"{result['baseline_test_roc_auc']:.4f}" if result.get("baseline_test_roc_auc") else "",
            machine_label(result["machine"]),
            result["measured_at"][:10],
        ])
    return markdown_table(header, rows)


def machine_label(machine: dict[str, object]) -> str:
    """The machine column: the CPU model first, as figures from different machines do not compare (the machine
    behind this workplace changed between results: an AMD EPYC, later an Intel Xeon at 2.5 GHz)."""
    cpu = str(machine.get("cpu") or "").replace("(R)", "").replace(" Processor", "").replace("  ", " ").strip()
    return f"{cpu + ', ' if cpu else ''}{machine['cores']} cores, {machine['memory_gib']} GiB"


def peer_table(results: list[dict[str, object]]) -> str:
    header = ["run", "flights", "this flow (s)", "all-Spark peer (s)", "peer / flow", "this flow's AUC",
              "peer LR AUC", "peer GBT AUC"]
    rows = []
    for result in results:
        if "peer" not in result:
            continue
        peer = result["peer"]
        if "failed" in peer:
            rows.append([f"SF={result['scale_factor']}", f"{result['generated']['flight_rows']:,}",
                         f"{result['flow']['wall_seconds']:.1f}", peer["failed"], "",
                         f"{result['test_roc_auc']:.4f}", "", ""])
            continue
        rows.append([
            f"SF={result['scale_factor']}", f"{result['generated']['flight_rows']:,}",
            f"{result['flow']['wall_seconds']:.1f}", f"{peer['wall_seconds']:.1f}",
            f"{result['peer_to_flow_wall_ratio']:.2f}", f"{result['test_roc_auc']:.4f}",
            f"{peer['test_roc_auc']['logistic regression']:.4f}",
            f"{peer['test_roc_auc']['gradient-boosted trees']:.4f}",
        ])
    return markdown_table(header, rows)


def increment_table(results: list[dict[str, object]]) -> str:
    header = ["run", "flights before", "flights added", "full flow (s)", "new month (s)", "nothing changed (s)",
              "full flow after the month (s)", "peak RSS (GiB)", "marts equal full refresh", "machine", "measured"]
    rows = []
    for result in results:
        runs, split = result["runs"], result["split"]
        equal = "yes" if result["marts_identical"] else "no: " + ", ".join(result["differing_marts"])
        rows.append([
            f"SF={result['scale_factor']} ({split['month']} added)",
            f"{split['flights_before']:,}",
            f"{split['flights_added']:,}",
            *[f"{runs[name]['wall_seconds']:.1f}" if name in runs else ""
              for name in ("full_flow_before", "new_month", "nothing_changed", "full_flow_after")],
            f"{result['peak_rss_mib'] / 1024:.2f}",
            equal,
            machine_label(result["machine"]),
            result["measured_at"][:10],
        ])
    return markdown_table(header, rows)


def update_benchmarks_md() -> None:
    text = BENCHMARKS_MD.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    results = latest_results()
    incremental = latest_results("increment")
    tables = (f"{results_table(results)}\n\n"
              "The same raw files through the all-Spark peer (`bench/peers/all_spark.py`):\n\n"
              f"{peer_table(results)}\n\n"
              "The incremental scenario (`make bench SF=N INCREMENT=1`, described above): the flow without the "
              "last month,\nwith it added, rerun with nothing changed, and its marts against a full rebuild:\n\n"
              f"{increment_table(incremental) if incremental else '_No incremental run recorded yet._'}")
    BENCHMARKS_MD.write_text(text[:start] + "\n" + tables + "\n" + text[end:])
