//! The quality bar of issue 8: `qunfa bounce classify --json`, the real
//! binary, over every report of the shared corpus, compared per recipient
//! with `expected.tsv`. Fails when agreement drops below the floor (overall)
//! or below 98 % on `not_exist` and `over_quota`; prints the table and every
//! disagreement (`cargo test --test bounce_corpus -- --nocapture`, or
//! `scripts/bounce-agreement.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Issue 8 targets 95 % overall; the classifier reaches 95.2 % today (README,
/// "Bounce classification", says where the rest disagrees and why). This
/// floor keeps what is reached from slipping; raise it as rules improve.
const OVERALL: f64 = 94.5;
const HARD: &[(&str, f64)] = &[("not_exist", 98.0), ("over_quota", 98.0)];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces")
}

#[derive(Debug)]
struct Got {
    recipient: String,
    class: String,
    status: String,
    reason: String,
}

#[test]
fn corpus_agreement_meets_the_bar() {
    let dir = corpus();
    let tsv = std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap_or_else(|e| panic!("the bounce corpus must be at {}: {e}", dir.display()));

    // Expected classes per file, in the report's order (the rows' order: one
    // file lists the same index twice).
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 4, "bad expected.tsv line: {line}");
        expected
            .entry(cols[0].to_string())
            .or_default()
            .push(cols[3].to_string());
    }

    let files: Vec<PathBuf> = expected.keys().map(|f| dir.join(f)).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .args(["bounce", "classify", "--json"])
        .args(&files)
        .output()
        .expect("run qunfa");
    assert!(
        out.status.success(),
        "bounce classify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: BTreeMap<String, Vec<Got>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        let file = v["file"].as_str().expect("file");
        let name = Path::new(file)
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        for key in ["recipient", "class", "reason"] {
            assert!(v[key].is_string(), "{key} missing in {line}");
        }
        assert!(v["status"].is_string() || v["status"].is_null(), "{line}");
        assert!(v["code"].is_u64() || v["code"].is_null(), "{line}");
        got.entry(name).or_default().push(Got {
            recipient: v["recipient"].as_str().unwrap_or_default().to_string(),
            class: v["class"].as_str().unwrap_or_default().to_string(),
            status: v["status"].as_str().unwrap_or("-").to_string(),
            reason: v["reason"].as_str().unwrap_or_default().to_string(),
        });
    }

    // Per expected class: (agreeing, total).
    let mut table: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for (file, classes) in &expected {
        let found = got.get(file).map(Vec::as_slice).unwrap_or_default();
        for (i, want) in classes.iter().enumerate() {
            let row = table.entry(want.clone()).or_default();
            row.1 += 1;
            match found.get(i) {
                Some(g) if &g.class == want => row.0 += 1,
                Some(g) => disagreements.push(format!(
                    "{file} #{}: expected {want}, got {} ({}, {}, {})",
                    i + 1,
                    g.class,
                    g.recipient,
                    g.status,
                    g.reason.chars().take(100).collect::<String>()
                )),
                None => disagreements.push(format!("{file} #{}: expected {want}, got no finding", i + 1)),
            }
        }
    }

    let pct = |(ok, all): (usize, usize)| {
        if all == 0 {
            100.0
        } else {
            100.0 * ok as f64 / all as f64
        }
    };
    let total = table.values().fold((0, 0), |acc, r| (acc.0 + r.0, acc.1 + r.1));
    println!(
        "bounce corpus agreement (per recipient, {} reports)",
        expected.len()
    );
    println!("{:<14}{:>7}{:>7}{:>9}", "class", "agree", "total", "percent");
    for (class, row) in &table {
        println!("{class:<14}{:>7}{:>7}{:>8.1}%", row.0, row.1, pct(*row));
    }
    println!(
        "{:<14}{:>7}{:>7}{:>8.1}%",
        "overall",
        total.0,
        total.1,
        pct(total)
    );
    println!("disagreements ({}):", disagreements.len());
    for d in &disagreements {
        println!("  {d}");
    }

    let mut below = Vec::new();
    if pct(total) < OVERALL {
        below.push(format!("overall {:.1}% < {OVERALL}%", pct(total)));
    }
    for (class, bar) in HARD {
        let row = table.get(*class).copied().unwrap_or_default();
        if pct(row) < *bar {
            below.push(format!("{class} {:.1}% < {bar}%", pct(row)));
        }
    }
    assert!(below.is_empty(), "below the bar: {}", below.join(", "));
}

#[test]
fn errors_are_one_line_and_a_failure() {
    let out = Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .args(["bounce", "classify", "/nonexistent/report.eml"])
        .output()
        .expect("run qunfa");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/report.eml"), "{err}");
}

#[test]
fn plain_output_is_one_tab_separated_line_per_recipient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dsn.eml");
    std::fs::write(
        &path,
        "From: MAILER-DAEMON@mx.example.jp\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nThe mail system\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.jp\r\n\r\n\
Final-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <a@b.example>: User unknown\r\n\r\n\
Final-Recipient: rfc822; c@d.example\r\nAction: failed\r\nStatus: 5.2.2\r\n\
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n--B--\r\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .args(["bounce", "classify"])
        .arg(&path)
        .output()
        .expect("run qunfa");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(&rows[0][1..5], ["a@b.example", "not_exist", "5.1.1", "550"]);
    assert_eq!(&rows[1][1..5], ["c@d.example", "over_quota", "5.2.2", "552"]);

    let out = Command::new(env!("CARGO_BIN_EXE_qunfa"))
        .args(["bounce", "classify", "--json"])
        .arg(&path)
        .output()
        .expect("run qunfa");
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&first).expect("json");
    assert_eq!(v["recipient"], "a@b.example");
    assert_eq!(v["class"], "not_exist");
    assert_eq!(v["status"], "5.1.1");
    assert_eq!(v["code"], 550);
}
