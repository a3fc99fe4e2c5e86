//! Bounds on what a template file may be, checked in one pass over the text before the YAML
//! parser sees it: a huge or absurdly nested document is refused at once with a clear error,
//! where the parser would spend seconds to minutes on it before its own recursion limit.

/// The largest template file accepted.
pub const MAX_TEMPLATE_BYTES: usize = 8 * 1024 * 1024;

/// The deepest nesting of mappings and sequences accepted (block and flow styles together).
pub const MAX_NESTING: usize = 64;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    TooLarge { bytes: usize },
    TooDeep { line: usize },
}

/// Checks size and nesting depth. The depth is measured the way a reader sees it: each more
/// indented block line opens a level, each `- ` that starts a compact nested sequence entry
/// opens one, and each `[` or `{` outside quotes and comments opens one until it is closed.
/// Block scalar text (`|`, `>`) is skipped.
pub(crate) fn check(source: &str) -> Result<(), Refused> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(Refused::TooLarge { bytes: source.len() });
    }
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // The indent of the line that opened a block scalar, while its text lasts.
    let mut block_scalar: Option<usize> = None;
    for (number, line) in source.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        if let Some(owner) = block_scalar {
            if body.trim().is_empty() || indent > owner {
                continue;
            }
            block_scalar = None;
        }
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let mut depth = flow;
        let mut rest = body;
        if flow == 0 {
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            depth = indents.len();
            while let Some(after) = rest.strip_prefix("- ") {
                depth += 1;
                rest = after.trim_start_matches(' ');
            }
        }
        let mut deepest = depth;
        let mut chars = rest.chars().peekable();
        let mut last = ' ';
        while let Some(ch) = chars.next() {
            match ch {
                '#' if last == ' ' || last == '\t' => break,
                '\'' | '"' if matches!(last, ' ' | '\t' | '[' | '{' | ',') => {
                    skip_quoted(&mut chars, ch);
                }
                '[' | '{' => {
                    flow += 1;
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | '}' => {
                    flow = flow.saturating_sub(1);
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            last = ch;
        }
        if deepest > MAX_NESTING {
            return Err(Refused::TooDeep { line: number + 1 });
        }
        if flow == 0 {
            let trimmed = rest.split(" #").next().unwrap_or("").trim_end();
            if trimmed.ends_with('|')
                || trimmed.ends_with('>')
                || trimmed.ends_with("|-")
                || trimmed.ends_with(">-")
                || trimmed.ends_with("|+")
                || trimmed.ends_with(">+")
            {
                block_scalar = Some(indent);
            }
        }
    }
    Ok(())
}

/// Skips a quoted scalar (on this line): `'…'` with `''` for a quote, `"…"` with `\` escapes.
fn skip_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) {
    while let Some(c) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek() == Some(&'\'') {
                chars.next();
                continue;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_templates_pass() {
        let ok = "name: a\nsteps:\n  - name: b\n    handler: {callable: \"x::y\", initialization: {k: [1, {z: 2}]}}\n    dependencies: [a]\ndescription: |\n  [[[[[[ not nesting: text\n    {{{{\nversion: 1.0.0 # [ comment\nq: '[' \n";
        assert_eq!(check(ok), Ok(()));
    }

    #[test]
    fn deep_flow_and_block_nesting_are_refused_with_their_line() {
        let deep_flow = format!("a: 1\nsteps: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(check(&deep_flow), Err(Refused::TooDeep { line: 2 }));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let deep_map = format!("a: {}1{}\n", "{k: ".repeat(100), "}".repeat(100));
        assert_eq!(check(&deep_map), Err(Refused::TooDeep { line: 1 }));
        let mut deep_block = String::new();
        for i in 0..100 {
            deep_block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert!(matches!(check(&deep_block), Err(Refused::TooDeep { .. })));
        let compact = format!("a:\n{}x\n", "- ".repeat(100));
        assert_eq!(check(&compact), Err(Refused::TooDeep { line: 2 }));
        // Within the bound, whatever the style.
        let fine = format!("a: {}1{}\n", "[".repeat(60), "]".repeat(60));
        assert_eq!(check(&fine), Ok(()));
    }

    #[test]
    fn huge_documents_are_refused_before_parsing() {
        let huge = "#".repeat(MAX_TEMPLATE_BYTES + 1);
        assert_eq!(
            check(&huge),
            Err(Refused::TooLarge {
                bytes: MAX_TEMPLATE_BYTES + 1
            })
        );
    }
}
