//! Plain text tables: left-aligned columns separated by two spaces, header first.

/// Renders `rows` under `header`, every column as wide as its widest cell (in characters).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let rows = vec![
            vec!["ns".to_owned(), "a_long_name".to_owned(), "1.0.0".to_owned()],
            vec!["namespace2".to_owned(), "b".to_owned(), "10.2.3".to_owned()],
        ];
        let text = render(&["NAMESPACE", "NAME", "VERSION"], &rows);
        assert_eq!(
            text,
            "NAMESPACE   NAME         VERSION\n\
             ns          a_long_name  1.0.0\n\
             namespace2  b            10.2.3\n"
        );
    }
}
