//! JSON ⇄ Ruby. Objects become Hashes with String keys; Integer and Float stay distinct, so a
//! handler sees `2` and `2.0` as JSON wrote them.

use magnus::prelude::*;
use magnus::{Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value};
use serde_json::{Map, Number, Value as Json};

pub fn to_ruby(ruby: &Ruby, value: &Json) -> Result<Value, Error> {
    Ok(match value {
        Json::Null => ruby.qnil().as_value(),
        Json::Bool(true) => ruby.qtrue().as_value(),
        Json::Bool(false) => ruby.qfalse().as_value(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                ruby.integer_from_i64(i).as_value()
            } else if let Some(u) = n.as_u64() {
                ruby.integer_from_u64(u).as_value()
            } else {
                ruby.float_from_f64(n.as_f64().unwrap_or(f64::NAN)).as_value()
            }
        }
        Json::String(s) => ruby.str_new(s).as_value(),
        Json::Array(items) => {
            let array = ruby.ary_new_capa(items.len());
            for item in items {
                array.push(to_ruby(ruby, item)?)?;
            }
            array.as_value()
        }
        Json::Object(map) => {
            let hash = ruby.hash_new();
            for (k, v) in map {
                hash.aset(ruby.str_new(k), to_ruby(ruby, v)?)?;
            }
            hash.as_value()
        }
    })
}

pub fn opt_to_ruby(ruby: &Ruby, value: Option<&Json>) -> Result<Value, Error> {
    match value {
        Some(v) => to_ruby(ruby, v),
        None => Ok(ruby.qnil().as_value()),
    }
}

/// A Ruby value as JSON: nil, true, false, Integer (64-bit), finite Float, String, Symbol (as its
/// name), Array and Hash (String or Symbol keys). Anything else is a `TypeError` naming the path.
pub fn from_ruby(ruby: &Ruby, value: Value) -> Result<Json, Error> {
    convert(ruby, value, &mut String::from("$"))
}

fn type_error(ruby: &Ruby, path: &str, msg: String) -> Error {
    Error::new(ruby.exception_type_error(), format!("{path}: {msg}"))
}

fn convert(ruby: &Ruby, value: Value, path: &mut String) -> Result<Json, Error> {
    if value.is_nil() {
        return Ok(Json::Null);
    }
    if value.is_kind_of(ruby.class_true_class()) {
        return Ok(Json::Bool(true));
    }
    if value.is_kind_of(ruby.class_false_class()) {
        return Ok(Json::Bool(false));
    }
    if let Some(i) = Integer::from_value(value) {
        if let Ok(n) = i.to_i64() {
            return Ok(Json::Number(n.into()));
        }
        if let Ok(n) = i.to_u64() {
            return Ok(Json::Number(n.into()));
        }
        return Err(type_error(
            ruby,
            path,
            format!("integer {} does not fit 64 bits", value.inspect()),
        ));
    }
    if let Some(f) = Float::from_value(value) {
        let f = f.to_f64();
        return Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| type_error(ruby, path, format!("{f} is not a finite number")));
    }
    if let Some(s) = RString::from_value(value) {
        return Ok(Json::String(s.to_string()?));
    }
    if let Some(s) = Symbol::from_value(value) {
        return Ok(Json::String(s.name()?.into_owned()));
    }
    if let Some(array) = RArray::from_value(value) {
        let mut items = Vec::with_capacity(array.len());
        for (i, item) in array.into_iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            items.push(convert(ruby, item, path)?);
            path.truncate(len);
        }
        return Ok(Json::Array(items));
    }
    if let Some(hash) = RHash::from_value(value) {
        let mut map = Map::new();
        // The pairs stay referenced by the Hash, so the GC keeps them while they sit in this Vec.
        let mut pairs: Vec<(Value, Value)> = Vec::with_capacity(hash.len());
        hash.foreach(|k: Value, v: Value| {
            pairs.push((k, v));
            Ok(magnus::r_hash::ForEach::Continue)
        })?;
        for (k, v) in pairs {
            let key = if let Some(s) = RString::from_value(k) {
                s.to_string()?
            } else if let Some(s) = Symbol::from_value(k) {
                s.name()?.into_owned()
            } else {
                return Err(type_error(
                    ruby,
                    path,
                    format!("hash key {} is not a String or Symbol", k.inspect()),
                ));
            };
            let len = path.len();
            path.push('.');
            path.push_str(&key);
            let v = convert(ruby, v, path)?;
            path.truncate(len);
            map.insert(key, v);
        }
        return Ok(Json::Object(map));
    }
    // SAFETY: the value is alive for this call; the name is copied out at once.
    let class = unsafe { value.classname() }.into_owned();
    Err(type_error(
        ruby,
        path,
        format!("a {class} is not a JSON value (use Hash, Array, String, Integer, Float, true, false or nil)"),
    ))
}
