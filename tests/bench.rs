//! `lcl bench` end to end on its cheapest item (our side only: CI has no torch): the run
//! spawns itself per item, reads the child's result and writes the table and the JSON report.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_bench_runs_an_item_in_a_child_process_and_reports_it() {
    let dir = scratch("bench");
    let report = dir.join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_lcl"))
        .args(["bench", "--items", "tiny-train-step", "--no-torch"])
        .args(["--min-runs", "2", "--min-seconds", "0", "--out"])
        .arg(&report)
        .output()
        .expect("lcl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("| tiny-train-step |"), "{table}");
    assert!(table.contains("episodes/s"), "{table}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let row = &report["rows"][0];
    assert_eq!(row["item"], "tiny-train-step");
    assert_eq!(row["ours"]["times_s"].as_array().unwrap().len(), 2);
    assert!(row["ours"]["median_s"].as_f64().unwrap() > 0.0);
    assert_eq!(row["ours"]["work"], 4.0);
    assert!(row["torch"].is_null());

    let unknown = Command::new(env!("CARGO_BIN_EXE_lcl"))
        .args(["bench", "--items", "gpt-5", "--no-torch", "--out"])
        .arg(dir.join("none.json"))
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown benchmark item \"gpt-5\""),
        "{stderr}"
    );
}
