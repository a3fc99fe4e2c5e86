//! Value rules shared by the blog handlers (spec §0.7, §0.8): blank values, exact money,
//! timestamps from one clock reading per attempt, and random ids.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use std::str::FromStr;

/// Absent, null, an empty or whitespace-only string, `[]` or `{}`. Never `0`, never `false`.
pub fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.chars().all(is_space),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// `\s` of the spec: `[ \t\n\v\f\r]`.
pub fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// "`x` is true": exactly the boolean `true`.
pub fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// The single clock reading a handler takes per attempt ("now").
#[derive(Debug, Clone, Copy)]
pub struct Now(pub DateTime<Utc>);

impl Now {
    pub fn read() -> Now {
        Now(Utc::now())
    }
    /// RFC 3339 UTC with milliseconds and `Z`.
    pub fn iso(&self) -> String {
        iso_ms(self.0)
    }
    pub fn plus_days(&self, days: i64) -> DateTime<Utc> {
        self.0 + Duration::seconds(days * 86_400)
    }
    /// `YYYYMMDD` of the UTC date.
    pub fn compact_date(&self) -> String {
        self.0.format("%Y%m%d").to_string()
    }
}

/// `2026-01-02T03:04:05.678Z` (sub-millisecond digits truncated).
pub fn iso_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `January 09, 2026`.
pub fn text_date(t: DateTime<Utc>) -> String {
    t.format("%B %d, %Y").to_string()
}

/// `n` lowercase hex digits from a uniform random source.
pub fn random_hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("hex digit"))
        .collect()
}

/// `n` uppercase hex digits.
pub fn random_hex_upper(n: usize) -> String {
    random_hex(n).to_ascii_uppercase()
}

/// A uniform integer in `lo..=hi`.
pub fn random_int(lo: i64, hi: i64) -> i64 {
    rand::rng().random_range(lo..=hi)
}

/// The exact decimal value of a JSON number (`29.99` stays 29.99, never a binary float).
pub fn decimal(v: Option<&Value>) -> Option<Decimal> {
    match v? {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).ok()
        }
        _ => None,
    }
}

/// Rounds to cents, half away from zero.
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A money value as a JSON number with at most 2 decimals.
pub fn money_json(d: Decimal) -> Value {
    let r = round_cents(d).normalize();
    serde_json::from_str(&r.to_string()).expect("a decimal prints as a JSON number")
}

/// `$` plus the value rounded to cents with exactly two decimals: `$6100.00`.
pub fn money_text(d: Decimal) -> String {
    let r = round_cents(d);
    format!("${r:.2}")
}

/// Integer cents written as money text: `4999` → `$49.99`.
pub fn cents_text(cents: i64) -> String {
    money_text(Decimal::new(cents, 2))
}

/// Whole-value match with the spec's regex dialect (§0.7): ASCII-only `\d`, `\s`, `\w`,
/// case-sensitive, no match across a trailing newline.
pub fn full_match(pattern: &str, value: &str) -> bool {
    let ascii = pattern
        .replace(r"\d", "[0-9]")
        .replace(r"\s", r"[ \t\n\x0B\x0C\r]")
        .replace(r"\w", "[A-Za-z0-9_]");
    regex::Regex::new(&format!(r"\A(?:{ascii})\z"))
        .map(|re| re.is_match(value))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blank_covers_empty_values_but_not_zero_or_false() {
        for v in [json!(null), json!(""), json!("  \t\u{000B}"), json!([]), json!({})] {
            assert!(is_blank(Some(&v)), "{v}");
        }
        assert!(is_blank(None));
        for v in [json!(0), json!(false), json!("x"), json!([0])] {
            assert!(!is_blank(Some(&v)), "{v}");
        }
    }

    #[test]
    fn only_boolean_true_is_true() {
        assert!(is_true(Some(&json!(true))));
        assert!(!is_true(Some(&json!("true"))));
        assert!(!is_true(Some(&json!(1))));
        assert!(!is_true(None));
    }

    #[test]
    fn money_is_exact_and_rounds_half_away_from_zero() {
        let price = decimal(Some(&json!(29.99))).unwrap();
        assert_eq!(price * Decimal::from(3), Decimal::from_str("89.97").unwrap());
        assert_eq!(
            round_cents(Decimal::from_str("1.005").unwrap()),
            Decimal::from_str("1.01").unwrap()
        );
        assert_eq!(
            round_cents(Decimal::from_str("-1.005").unwrap()),
            Decimal::from_str("-1.01").unwrap()
        );
        assert_eq!(money_json(Decimal::from_str("124.760").unwrap()), json!(124.76));
        assert_eq!(money_text(Decimal::from(6100)), "$6100.00");
        assert_eq!(cents_text(4999), "$49.99");
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(iso_ms(t), "2026-01-02T03:04:05.678Z");
        assert_eq!(text_date(t), "January 02, 2026");
        assert_eq!(Now(t).compact_date(), "20260102");
    }

    #[test]
    fn random_ids_have_the_requested_alphabet_and_length() {
        let h = random_hex(24);
        assert!(full_match("[0-9a-f]{24}", &h), "{h}");
        assert!(full_match("[0-9A-F]{8}", &random_hex_upper(8)));
        assert!((1000..=9999).contains(&random_int(1000, 9999)));
    }

    #[test]
    fn full_match_rejects_partial_and_trailing_newline() {
        assert!(full_match(r"\d{3}", "123"));
        assert!(!full_match(r"\d{3}", "1234"));
        assert!(!full_match(r"\d{3}", "123\n"));
        assert!(!full_match(r"\d", "\u{0663}"), "Arabic-Indic digits are not \\d");
        assert!(full_match(r"a.c", "abc"));
    }
}
