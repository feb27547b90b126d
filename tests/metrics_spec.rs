//! SPEC.md §4.25 lists every metric with its type: this test renders the
//! exposition of a real application (its store in a temporary directory)
//! and holds the two to each other, in both directions.

use std::collections::BTreeMap;

use rollcall::app::{metrics, App, AppConfig};
use rollcall::store::Store;

/// `name -> type` of every `# TYPE` line of an exposition.
fn rendered_types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').expect("# TYPE <name> <type>");
            (name.to_string(), kind.to_string())
        })
        .collect()
}

/// `name -> type` of every metric row of SPEC.md §4.25's table.
fn spec_types() -> BTreeMap<String, String> {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md")).unwrap();
    let start = spec.find("### 4.25 ").expect("SPEC.md has §4.25");
    let section = &spec[start..];
    let end = section.find("\n## ").unwrap_or(section.len());
    section[..end]
        .lines()
        .filter(|l| l.starts_with("| `rollcall_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect()
}

#[tokio::test]
async fn every_metric_is_in_the_spec_with_its_type_and_back() {
    let dir = std::env::temp_dir().join(format!("rollcall-metrics-spec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir.join("db"), 8 << 20).unwrap();
    let (app, io) = App::start(AppConfig::default(), store, b"test-secret".to_vec());
    let text = metrics::render(&app, &io);
    let rendered = rendered_types(&text);
    let spec = spec_types();
    assert!(rendered.len() >= 30, "{} families rendered", rendered.len());
    assert_eq!(rendered, spec, "SPEC.md §4.25 and /metrics disagree");
    for name in rendered.keys() {
        assert!(name.starts_with("rollcall_"), "{name}");
        if rendered[name] == "counter" {
            assert!(name.ends_with("_total"), "{name}");
        }
    }
    drop((app, io));
    let _ = std::fs::remove_dir_all(&dir);
}
