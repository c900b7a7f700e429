//! How `dirsync` prints answers: readable tables by default, the API's JSON with `--json`
//! (one document on stdout, for scripts).

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// A table of `rows` under `headers`, as text.
pub fn table<R: AsRef<[String]>>(headers: &[&str], rows: &[R]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().copied());
    for row in rows {
        table.add_row(row.as_ref().iter().cloned());
    }
    table.to_string()
}

/// Label/value lines of one object, as a two-column table.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    for (label, value) in pairs {
        table.add_row([label.to_string(), value.clone()]);
    }
    table.to_string()
}

/// Prints `value` as JSON with `json`, else as `render` makes it.
pub fn print<T: Serialize>(json: bool, value: &T, render: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("api values serialize")
        );
    } else {
        println!("{}", render(value));
    }
}

/// A moment as operators read it: to the second, in UTC.
pub fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// An optional value as a cell: `-` when absent.
pub fn cell<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The progress bar of the commands that follow a sync or dry run: batches done of sent,
/// with a message; hidden with `--json`, whose lines take its place.
pub fn batch_bar(json: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] {wide_bar} {pos}/{len} batches  {msg}",
        )
        .expect("static template"),
    );
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_headers_and_every_cell() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["1".to_string(), "Contoso".to_string()],
                vec!["2".into(), "Fabrikam".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.iter().any(|l| l.contains("ID") && l.contains("NAME")),
            "{text}"
        );
        assert!(
            text.contains("Contoso") && text.contains("Fabrikam"),
            "{text}"
        );
        assert_eq!(cell::<u8>(None), "-");
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-27T23:59:41.017003Z").unwrap();
        assert_eq!(when(Some(t.to_utc())), "2026-11-27 23:59:41 UTC");
        assert_eq!(cell(Some(3)), "3");
        let f = fields(&[("status", "Active".into())]);
        assert!(f.contains("status") && f.contains("Active"), "{f}");
    }
}
