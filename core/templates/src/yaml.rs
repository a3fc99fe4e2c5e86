//! Helpers to walk a parsed YAML document while collecting problems.
//!
//! Every problem carries an "order key": for each level, the position of the
//! key in its mapping or the index in its sequence. Sorting by that key gives
//! document order regardless of the order in which checks ran.

use std::path::{Path, PathBuf};

use serde_json::{Map as JsonMap, Number, Value as Json};
use serde_yaml::Value as Y;

use crate::error::Problem;

/// Where a value sits in the template.
#[derive(Clone, Debug, Default)]
pub(crate) struct Loc {
    /// Dotted path, e.g. `steps[2].retry.max_attempts`.
    pub field: String,
    /// Document-order key.
    order: Vec<u32>,
    /// Enclosing step, if any.
    pub step: Option<String>,
}

impl Loc {
    pub fn root() -> Loc {
        Loc::default()
    }

    /// The value of key `name`, found at position `pos` of this mapping.
    pub fn key(&self, name: &str, pos: usize) -> Loc {
        let field = if self.field.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.field)
        };
        let mut order = self.order.clone();
        order.push(to_u32(pos));
        Loc {
            field,
            order,
            step: self.step.clone(),
        }
    }

    /// Item `i` of this sequence.
    pub fn index(&self, i: usize) -> Loc {
        let mut order = self.order.clone();
        order.push(to_u32(i));
        Loc {
            field: format!("{}[{i}]", self.field),
            order,
            step: self.step.clone(),
        }
    }

    /// A key that is absent from this mapping: named in the field, sorted
    /// with the mapping itself.
    pub fn missing(&self, name: &str) -> Loc {
        let mut loc = self.key(name, 0);
        loc.order.pop();
        loc
    }

    /// A sub-path that is not a real key (e.g. a JSON Pointer into a schema),
    /// sorted with this location.
    pub fn suffix(&self, dotted: &str) -> Loc {
        let mut loc = self.clone();
        if !dotted.is_empty() {
            loc.field = format!("{}.{dotted}", self.field);
        }
        loc
    }

    pub fn with_step(mut self, step: Option<&str>) -> Loc {
        self.step = step.map(str::to_owned);
        self
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Accumulates problems; [`Collector::finish`] returns them in document order.
pub(crate) struct Collector {
    file: Option<PathBuf>,
    items: Vec<(Vec<u32>, Problem)>,
}

impl Collector {
    pub fn new(file: Option<&Path>) -> Collector {
        Collector {
            file: file.map(Path::to_path_buf),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, loc: &Loc, message: impl Into<String>) {
        let problem = Problem {
            file: self.file.clone(),
            step: loc.step.clone(),
            field: loc.field.clone(),
            message: message.into(),
        };
        self.items.push((loc.order.clone(), problem));
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn finish(mut self) -> Vec<Problem> {
        // Stable: problems at the same place keep the order they were found in.
        self.items.sort_by(|a, b| a.0.cmp(&b.0));
        self.items.into_iter().map(|(_, p)| p).collect()
    }
}

/// A mapping of the template structure, with colon keys normalized.
pub(crate) struct Map<'v> {
    pub loc: Loc,
    entries: Vec<(String, usize, &'v Y)>,
}

impl<'v> Map<'v> {
    /// The non-null value of `key`, with its location.
    pub fn get(&self, key: &str) -> Option<(&'v Y, Loc)> {
        self.entries
            .iter()
            .find(|(k, _, v)| k == key && !v.is_null())
            .map(|(k, pos, v)| (*v, self.loc.key(k, *pos)))
    }
}

/// Strips one leading `:` (Ruby symbol keys such as `:name:`).
fn normalize_key(key: &str) -> &str {
    key.strip_prefix(':').unwrap_or(key)
}

/// Reads a structural mapping: reports non-mappings, non-string keys,
/// duplicate keys (after colon stripping) and keys not in `allowed`.
pub(crate) fn as_map<'v>(c: &mut Collector, value: &'v Y, loc: &Loc, allowed: &[&str]) -> Option<Map<'v>> {
    let Some(mapping) = value.as_mapping() else {
        c.push(loc, format!("must be a mapping, found {}", describe(value)));
        return None;
    };
    let mut entries: Vec<(String, usize, &'v Y)> = Vec::new();
    for (pos, (k, v)) in mapping.iter().enumerate() {
        let Some(raw) = k.as_str() else {
            c.push(
                &loc.key("?", pos),
                format!("keys must be strings, found {}", describe(k)),
            );
            continue;
        };
        let key = normalize_key(raw);
        let key_loc = loc.key(key, pos);
        if !allowed.contains(&key) {
            c.push(
                &key_loc,
                format!("unknown key `{raw}` (allowed: {})", allowed.join(", ")),
            );
            continue;
        }
        if entries.iter().any(|(k, _, _)| k == key) {
            c.push(&key_loc, format!("duplicate key `{raw}`"));
            continue;
        }
        entries.push((key.to_owned(), pos, v));
    }
    Some(Map {
        loc: loc.clone(),
        entries,
    })
}

/// The `name` of a mapping (plain or colon key), used to label the problems
/// found inside it whatever the key order.
pub(crate) fn name_hint(value: &Y) -> Option<&str> {
    value.as_mapping()?.iter().find_map(|(k, v)| {
        let key = k.as_str()?;
        (normalize_key(key) == "name").then(|| v.as_str()).flatten()
    })
}

/// A short description of a YAML value's type, for messages.
pub(crate) fn describe(value: &Y) -> &'static str {
    match value {
        Y::Null => "null",
        Y::Bool(_) => "a boolean",
        Y::Number(n) if n.is_f64() => "a floating-point number",
        Y::Number(_) => "an integer",
        Y::String(_) => "a string",
        Y::Sequence(_) => "a sequence",
        Y::Mapping(_) => "a mapping",
        Y::Tagged(_) => "a tagged value",
    }
}

/// A required string key; reports absence or a non-string.
pub(crate) fn req_str(c: &mut Collector, map: &Map<'_>, key: &str) -> Option<(String, Loc)> {
    match map.get(key) {
        None => {
            c.push(&map.loc.missing(key), "is required");
            None
        }
        Some((v, loc)) => string(c, v, &loc).map(|s| (s, loc)),
    }
}

/// An optional string key.
pub(crate) fn opt_str(c: &mut Collector, map: &Map<'_>, key: &str) -> Option<String> {
    let (v, loc) = map.get(key)?;
    string(c, v, &loc)
}

pub(crate) fn string(c: &mut Collector, v: &Y, loc: &Loc) -> Option<String> {
    match v.as_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            c.push(loc, format!("must be a string, found {}", describe(v)));
            None
        }
    }
}

/// An optional boolean key.
pub(crate) fn opt_bool(c: &mut Collector, map: &Map<'_>, key: &str) -> Option<bool> {
    let (v, loc) = map.get(key)?;
    match v.as_bool() {
        Some(b) => Some(b),
        None => {
            c.push(&loc, format!("must be true or false, found {}", describe(v)));
            None
        }
    }
}

/// An optional integer key within `min..=max`.
pub(crate) fn opt_int(c: &mut Collector, map: &Map<'_>, key: &str, min: u64, max: u64) -> Option<(u64, Loc)> {
    let (v, loc) = map.get(key)?;
    let range = format!("must be an integer between {min} and {max}");
    match v {
        Y::Number(n) if n.is_u64() || n.is_i64() => match n.as_u64() {
            Some(x) if (min..=max).contains(&x) => Some((x, loc)),
            _ => {
                c.push(&loc, format!("{range}, found {n}"));
                None
            }
        },
        other => {
            c.push(&loc, format!("{range}, found {}", describe(other)));
            None
        }
    }
}

/// Checks a name against `^[a-z][a-z0-9_]{0,max_tail}$`.
pub(crate) fn is_identifier(name: &str, max_tail: usize) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|ch| ch.is_ascii_lowercase());
    first_ok
        && name.len() <= max_tail + 1
        && chars.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
}

/// Reports `name` if it is not an identifier with at most `max_tail + 1` characters.
pub(crate) fn check_identifier(c: &mut Collector, name: &str, loc: &Loc, max_tail: usize) {
    if !is_identifier(name, max_tail) {
        c.push(
            loc,
            format!(
                "`{name}` is not a valid name: it must match ^[a-z][a-z0-9_]{{0,{max_tail}}}$ \
                 (a lowercase letter, then up to {max_tail} lowercase letters, digits or underscores)"
            ),
        );
    }
}

/// Converts user data (input schema, handler initialization) to JSON,
/// keeping keys verbatim. Scalar keys become strings; other problems are reported.
pub(crate) fn to_json(c: &mut Collector, value: &Y, loc: &Loc) -> Option<Json> {
    match value {
        Y::Null => Some(Json::Null),
        Y::Bool(b) => Some(Json::Bool(*b)),
        Y::String(s) => Some(Json::String(s.clone())),
        Y::Number(n) => {
            let json = if let Some(u) = n.as_u64() {
                Some(Number::from(u))
            } else if let Some(i) = n.as_i64() {
                Some(Number::from(i))
            } else {
                n.as_f64().and_then(Number::from_f64)
            };
            if json.is_none() {
                c.push(loc, format!("{n} cannot be represented in JSON"));
            }
            json.map(Json::Number)
        }
        Y::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match to_json(c, item, &loc.index(i)) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            ok.then_some(Json::Array(out))
        }
        Y::Mapping(mapping) => {
            let mut out = JsonMap::new();
            let mut ok = true;
            for (pos, (k, v)) in mapping.iter().enumerate() {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        let msg = format!("keys must be strings, found {}", describe(other));
                        c.push(&loc.key("?", pos), msg);
                        ok = false;
                        continue;
                    }
                };
                match to_json(c, v, &loc.key(&key, pos)) {
                    Some(json) => {
                        out.insert(key, json);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(Json::Object(out))
        }
        Y::Tagged(tagged) => {
            c.push(loc, format!("YAML tags such as `{}` are not supported", tagged.tag));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_pattern() {
        assert!(is_identifier("a", 63));
        assert!(is_identifier("step_1", 63));
        assert!(!is_identifier("", 63));
        assert!(!is_identifier("1step", 63));
        assert!(!is_identifier("Step", 63));
        assert!(!is_identifier("step-one", 63));
        assert!(is_identifier(&"a".repeat(64), 63));
        assert!(!is_identifier(&"a".repeat(65), 63));
        assert!(is_identifier(&"a".repeat(40), 39));
        assert!(!is_identifier(&"a".repeat(41), 39));
    }

    #[test]
    fn locations_build_dotted_fields_and_sort_in_document_order() {
        let root = Loc::root();
        let steps = root.key("steps", 3);
        let retry = steps.index(2).key("retry", 4).key("max_attempts", 1);
        assert_eq!(retry.field, "steps[2].retry.max_attempts");
        let mut c = Collector::new(None);
        c.push(&retry, "late");
        c.push(&root.key("name", 0), "early");
        c.push(&steps.missing("x"), "middle");
        let msgs: Vec<_> = c.finish().into_iter().map(|p| p.message).collect();
        assert_eq!(msgs, ["early", "middle", "late"]);
    }

    #[test]
    fn user_data_keys_are_kept_verbatim_and_scalars_converted() {
        let y: Y = serde_yaml::from_str(":sym: 1\n2: [true, 1.5, null]\n").unwrap();
        let mut c = Collector::new(None);
        let json = to_json(&mut c, &y, &Loc::root()).unwrap();
        assert!(c.is_empty());
        assert_eq!(json, serde_json::json!({":sym": 1, "2": [true, 1.5, null]}));
    }
}
