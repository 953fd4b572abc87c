//! `lcl parity` end to end: every fixture check runs and holds, the table and the JSON.
//! (The checks themselves run on every backend in the parity tests; this file runs on flex
//! only, as a spawned program on a software GPU recompiles every kernel.)

mod common;

use common::*;

#[test]
fn parity_checks_every_fixture_on_this_device() {
    let dir = scratch("parity");
    let json = dir.join("parity.json");
    let output = run_lcl(&["parity", "--json", json.to_str().unwrap()]);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("| LCL episode logits |"), "{table}");
    let checks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let checks = checks.as_array().unwrap();
    assert!(checks.len() >= 9, "{checks:?}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    assert!(
        text.contains(&format!("all {} parity checks hold", checks.len())),
        "{text}"
    );
}
