//! The formats of spec §0.7 (timestamps, text dates) and §0.8 (random ids), and masking: a value
//! that may differ between runs or languages is checked against its format first and only then
//! replaced by a placeholder, so results can be compared as JSON.
//!
//! Patterns use a small whole-value syntax: literal characters, character classes (`[0-9a-f]`,
//! `[89ab]`, `[A-Z]`) and exact repeat counts (`{24}`). That covers every pattern of §0.7/§0.8
//! and keeps this crate free of a regex dependency.

use serde_json::Value;

/// §0.7 timestamp: RFC 3339 UTC with milliseconds and `Z`.
pub const TIMESTAMP: &str = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}.[0-9]{3}Z";
/// §0.8 UUID v7, lowercase (task uuids, engine-assigned correlation ids, event ids).
pub const UUID7: &str = "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

/// One token of a pattern: the characters it accepts and how many it consumes.
struct Token {
    ranges: Vec<(char, char)>,
    count: usize,
}

fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let mut ranges = vec![];
        if chars[i] == '[' {
            let end = i + chars[i..]
                .iter()
                .position(|&c| c == ']')
                .unwrap_or_else(|| panic!("unclosed class in {pattern}"));
            let class = &chars[i + 1..end];
            let mut j = 0;
            while j < class.len() {
                if j + 2 < class.len() && class[j + 1] == '-' {
                    ranges.push((class[j], class[j + 2]));
                    j += 3;
                } else {
                    ranges.push((class[j], class[j]));
                    j += 1;
                }
            }
            i = end + 1;
        } else {
            ranges.push((chars[i], chars[i]));
            i += 1;
        }
        let mut count = 1;
        if i < chars.len() && chars[i] == '{' {
            let end = i + chars[i..]
                .iter()
                .position(|&c| c == '}')
                .unwrap_or_else(|| panic!("unclosed count in {pattern}"));
            count = chars[i + 1..end]
                .iter()
                .collect::<String>()
                .parse()
                .unwrap_or_else(|_| panic!("bad count in {pattern}"));
            i = end + 1;
        }
        out.push(Token { ranges, count });
    }
    out
}

/// Whether the whole of `s` matches `pattern` (see the module docs for the syntax).
pub fn matches(pattern: &str, s: &str) -> bool {
    let mut it = s.chars();
    for token in tokens(pattern) {
        for _ in 0..token.count {
            match it.next() {
                Some(c) if token.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) => {}
                _ => return false,
            }
        }
    }
    it.next().is_none()
}

/// Whether `s` is a §0.8 UUID v7 (task uuids, engine-assigned correlation ids).
pub fn is_uuid7(s: &str) -> bool {
    matches(UUID7, s)
}

/// Whether `v` is a string matching `pattern`.
pub fn matches_value(pattern: &str, v: &Value) -> bool {
    v.as_str().is_some_and(|s| matches(pattern, s))
}

/// Whether `v` is a §0.7 timestamp.
pub fn is_timestamp(v: &Value) -> bool {
    matches_value(TIMESTAMP, v)
        && v.as_str()
            .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .is_some()
}

/// Asserts that `v` is a §0.7 timestamp and returns it parsed.
pub fn timestamp(v: &Value) -> chrono::DateTime<chrono::Utc> {
    assert!(
        is_timestamp(v),
        "{v} is not an RFC 3339 UTC timestamp with milliseconds and Z"
    );
    v.as_str().expect("string").parse().expect("rfc3339")
}

/// Whether `v` is a §0.7 text date (`%B %d, %Y`, e.g. `January 09, 2026`).
pub fn is_text_date(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        chrono::NaiveDate::parse_from_str(s, "%B %d, %Y").is_ok_and(|d| d.format("%B %d, %Y").to_string() == s)
    })
}

/// The format a volatile value must have before it is masked.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// A pattern of [`matches`], e.g. `pay_[0-9a-f]{24}`.
    Pattern(&'static str),
    /// A §0.7 timestamp.
    Timestamp,
    /// A §0.7 text date.
    TextDate,
    /// An integer in `lo..=hi` written without fraction.
    IntRange(i64, i64),
}

impl Format {
    pub fn check(&self, v: &Value) -> bool {
        match *self {
            Format::Pattern(p) => matches_value(p, v),
            Format::Timestamp => is_timestamp(v),
            Format::TextDate => is_text_date(v),
            Format::IntRange(lo, hi) => v.as_i64().is_some_and(|n| (lo..=hi).contains(&n)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Format::Pattern(p) => format!("pattern {p}"),
            Format::Timestamp => format!("timestamp {TIMESTAMP}"),
            Format::TextDate => "text date %B %d, %Y".into(),
            Format::IntRange(lo, hi) => format!("integer {lo}..={hi}"),
        }
    }
}

/// A field whose value may differ between runs or languages (§0.1 rule 2).
#[derive(Debug, Clone, Copy)]
pub struct Volatile {
    /// A JSON Pointer into the step result; a `*` segment stands for every array index.
    pub pointer: &'static str,
    pub format: Format,
    /// Fixed values that are allowed and compared as they are (e.g. `user_existing_001`, or
    /// `null` for an approval id when the refund is auto-approved).
    pub fixed: &'static [&'static str],
    pub null_allowed: bool,
}

impl Volatile {
    pub const fn new(pointer: &'static str, format: Format) -> Volatile {
        Volatile {
            pointer,
            format,
            fixed: &[],
            null_allowed: false,
        }
    }

    pub const fn ts(pointer: &'static str) -> Volatile {
        Volatile::new(pointer, Format::Timestamp)
    }

    pub const fn id(pointer: &'static str, pattern: &'static str) -> Volatile {
        Volatile::new(pointer, Format::Pattern(pattern))
    }

    pub const fn or_fixed(mut self, fixed: &'static [&'static str]) -> Volatile {
        self.fixed = fixed;
        self
    }

    pub const fn or_null(mut self) -> Volatile {
        self.null_allowed = true;
        self
    }

    /// The placeholder a masked value is replaced by: `<` + the last pointer segment + `>`.
    pub fn placeholder(&self) -> String {
        format!("<{}>", self.pointer.rsplit('/').next().unwrap_or(self.pointer))
    }
}

/// The concrete pointers a pointer with `*` segments designates in `v` (none when a parent is
/// missing; the pointer itself when it has no `*`).
pub fn expand(pointer: &str, v: &Value) -> Vec<String> {
    let mut prefixes = vec![String::new()];
    for seg in pointer.split('/').skip(1) {
        let mut next = vec![];
        for p in prefixes {
            if seg == "*" {
                let len = v.pointer(&p).and_then(Value::as_array).map_or(0, Vec::len);
                next.extend((0..len).map(|i| format!("{p}/{i}")));
            } else {
                next.push(format!("{p}/{seg}"));
            }
        }
        prefixes = next;
    }
    prefixes
}

/// A volatile value that did not have its format.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatViolation {
    pub pointer: String,
    pub value: Value,
    pub expected: String,
}

/// Checks and masks the `rules` in `v`: every present value must have its format (or be one of
/// its fixed values, or null where allowed) and is then replaced by the rule's placeholder. A
/// missing value is left missing for the comparison to report. Returns the masked value, the
/// violations, and the (original id, placeholder) pairs of the masked ids, so that copies of
/// those ids elsewhere can be replaced too ([`replace_known`]). Timestamps are not collected:
/// two of them can be equal by chance, so every timestamp field needs its own rule.
pub fn mask(v: &Value, rules: &[Volatile]) -> (Value, Vec<FormatViolation>, Vec<(String, String)>) {
    let mut out = v.clone();
    let mut violations = vec![];
    let mut known = vec![];
    for rule in rules {
        for p in expand(rule.pointer, v) {
            let Some(value) = v.pointer(&p) else { continue };
            if (value.is_null() && rule.null_allowed) || value.as_str().is_some_and(|s| rule.fixed.contains(&s)) {
                continue;
            }
            if !rule.format.check(value) {
                violations.push(FormatViolation {
                    pointer: p,
                    value: value.clone(),
                    expected: rule.format.describe(),
                });
                continue;
            }
            let placeholder = rule.placeholder();
            if let (Format::Pattern(_), Some(s)) = (rule.format, value.as_str()) {
                known.push((s.to_string(), placeholder.clone()));
            }
            *out.pointer_mut(&p).expect("pointer exists") = Value::String(placeholder);
        }
    }
    (out, violations, known)
}

/// [`mask`] for a test that compares a whole result: panics when a value has the wrong format
/// and returns the masked value (a missing value stays missing, so the comparison reports it).
pub fn mask_checked(v: &Value, rules: &[Volatile]) -> Value {
    let (masked, violations, _) = mask(v, rules);
    assert!(
        violations.is_empty(),
        "values with the wrong format: {violations:#?}\nin {v:#}"
    );
    masked
}

/// `v` with every string equal to a known volatile value replaced by its placeholder, and every
/// occurrence of a long (≥ 12 characters) volatile value inside a string replaced too (e.g. the
/// delegated task id inside a ticket's resolution note).
pub fn replace_known(v: &Value, known: &[(String, String)]) -> Value {
    match v {
        Value::String(s) => {
            if let Some((_, placeholder)) = known.iter().find(|(k, _)| k == s) {
                return Value::String(placeholder.clone());
            }
            let mut s = s.clone();
            for (k, placeholder) in known.iter().filter(|(k, _)| k.len() >= 12) {
                if s.contains(k.as_str()) {
                    s = s.replace(k.as_str(), placeholder);
                }
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_known(x, known)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), replace_known(x, known))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_whole_values_only() {
        assert!(matches("pay_[0-9a-f]{4}", "pay_09af"));
        for bad in [
            "pay_09aF",
            "pay_09a",
            "pay_09afe",
            "pay_09af\n",
            "xpay_09af",
            "pay-09af",
        ] {
            assert!(!matches("pay_[0-9a-f]{4}", bad), "{bad}");
        }
        assert!(matches(UUID7, "0193a5b2-1c3d-7e4f-8a5b-0123456789ab"));
        assert!(!matches(UUID7, "0193a5b2-1c3d-4e4f-8a5b-0123456789ab"), "v4");
        assert!(!matches(UUID7, "0193a5b2-1c3d-7e4f-ca5b-0123456789ab"), "variant");
        assert!(!matches(UUID7, "0193A5B2-1C3D-7E4F-8A5B-0123456789AB"), "upper case");
        assert!(!matches(UUID7, "0193a5b21c3d7e4f8a5b0123456789ab"), "no hyphens");
        assert!(matches("ORD-[0-9]{8}-[0-9A-F]{8}", "ORD-20261122-0A1B2C3D"));
        assert!(!matches("ORD-[0-9]{8}-[0-9A-F]{8}", "ORD-20261122-0a1b2c3d"));
    }

    #[test]
    fn timestamps_and_text_dates_are_checked_strictly() {
        assert!(is_timestamp(&json!("2026-01-02T03:04:05.678Z")));
        for bad in [
            json!("2026-01-02T03:04:05Z"),
            json!("2026-01-02T03:04:05.678+00:00"),
            json!("2026-01-02 03:04:05.678Z"),
            json!("2026-13-02T03:04:05.678Z"),
            json!("2026-01-02T03:04:05.6789Z"),
            json!("2026-01-02T03:04:05.67Z"),
            json!("x"),
            json!(12),
        ] {
            assert!(!is_timestamp(&bad), "{bad}");
        }
        assert!(is_text_date(&json!("January 09, 2026")));
        for bad in [
            "January 9, 2026",
            "january 09, 2026",
            "Jan 09, 2026",
            "February 30, 2026",
        ] {
            assert!(!is_text_date(&json!(bad)), "{bad}");
        }
    }

    #[test]
    fn mask_checks_formats_expands_arrays_and_keeps_fixed_values() {
        let rules = [
            Volatile::id("/items/*/id", "id_[0-9a-f]{4}"),
            Volatile::ts("/at"),
            Volatile::id("/user", "user_[0-9a-f]{4}").or_fixed(&["user_existing"]),
            Volatile::id("/approval", "appr_[0-9a-f]{4}").or_null(),
            Volatile::ts("/absent"),
        ];
        let v = json!({"items": [{"id": "id_00ff"}, {"id": "bad"}], "at": "2026-01-02T03:04:05.678Z",
                       "user": "user_existing", "approval": null, "note": "see id_00ff"});
        let (masked, violations, known) = mask(&v, &rules);
        assert_eq!(
            masked,
            json!({"items": [{"id": "<id>"}, {"id": "bad"}], "at": "<at>", "user": "user_existing",
                   "approval": null, "note": "see id_00ff"})
        );
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].pointer, "/items/1/id");
        assert_eq!(known[0], ("id_00ff".to_string(), "<id>".to_string()));
        let long = vec![("task_0193a5b2".to_string(), "<task>".to_string())];
        assert_eq!(
            replace_known(&json!({"a": ["task_0193a5b2", "id task_0193a5b2."], "b": 1}), &long),
            json!({"a": ["<task>", "id <task>."], "b": 1})
        );
        assert_eq!(
            replace_known(&json!("see id_00ff"), &known),
            json!("see id_00ff"),
            "short ids replace only whole values"
        );
    }

    #[test]
    fn mask_checked_masks_well_formed_values_and_panics_on_a_violation() {
        let rules = [Volatile::id("/id", "pay_[0-9a-f]{4}"), Volatile::ts("/at")];
        assert_eq!(
            mask_checked(
                &json!({"id": "pay_00ff", "at": "2026-01-02T03:04:05.678Z", "n": 1}),
                &rules
            ),
            json!({"id": "<id>", "at": "<at>", "n": 1})
        );
        assert_eq!(
            mask_checked(&json!({"n": 1}), &rules),
            json!({"n": 1}),
            "missing stays missing"
        );
        for bad in [
            json!({"id": "pay_00FF", "at": "2026-01-02T03:04:05.678Z"}),
            json!({"id": "pay_00ff", "at": "2026-01-02T03:04:05Z"}),
            json!({"id": null, "at": "2026-01-02T03:04:05.678Z"}),
        ] {
            assert!(
                std::panic::catch_unwind(|| mask_checked(&bad, &rules)).is_err(),
                "{bad}"
            );
        }
    }
}
