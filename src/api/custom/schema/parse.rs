//! JSONSchemaProps (as JSON) to a [`Structural`] tree.
//!
//! Keywords CRDs reject (`$ref`, `definitions`, ...) are only recorded as
//! present so that [`super::check`] can report them with upstream's text;
//! a keyword of the wrong JSON type is reported here, since upstream
//! refuses such a CRD while decoding it.

use serde_json::{Map, Value};

use super::gofmt::invalid;
use super::{Additional, Pattern, Structural};
use crate::api::validation::FieldCause;

/// Formats upstream validates in CRD schemas (1.0 and later), compared with
/// dashes removed as go-openapi's registry does; any other format is
/// ignored.
const SUPPORTED_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

/// Keywords CRD schemas forbid, with the path child and upstream's detail.
pub(super) const UNSUPPORTED: &[(&str, &str)] = &[
    ("id", "id is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("$ref", "$ref is not supported"),
];

/// Parses one schema node; `path` is its field path for causes.
pub(super) fn node(v: &Value, path: &str, errs: &mut Vec<FieldCause>) -> Structural {
    let mut s = Structural::default();
    let Some(m) = v.as_object() else {
        errs.push(invalid(path, v, "must be an object"));
        return s;
    };
    let r = Reader { m, path, errs };
    r.read(&mut s);
    s
}

struct Reader<'a> {
    m: &'a Map<String, Value>,
    path: &'a str,
    errs: &'a mut Vec<FieldCause>,
}

impl Reader<'_> {
    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn bad(&mut self, key: &str, v: &Value, what: &str) {
        let p = self.at(key);
        self.errs.push(invalid(&p, v, what));
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.m.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => {
                self.bad(key, other, "must be a string");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.m.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Null => None,
            other => {
                self.bad(key, other, "must be a boolean");
                None
            }
        }
    }

    fn float(&mut self, key: &str) -> Option<f64> {
        match self.m.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::Null => None,
            other => {
                self.bad(key, other, "must be a number");
                None
            }
        }
    }

    fn int(&mut self, key: &str) -> Option<i64> {
        let v = self.m.get(key)?;
        match v {
            Value::Null => None,
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(i),
                None => {
                    self.bad(key, v, "must be an integer");
                    None
                }
            },
            other => {
                self.bad(key, other, "must be an integer");
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        let Some(v) = self.m.get(key) else {
            return Vec::new();
        };
        match v {
            Value::Null => Vec::new(),
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            other => {
                self.bad(key, other, "must be a list of strings");
                Vec::new()
            }
        }
    }

    fn schema(&mut self, key: &str) -> Option<Structural> {
        let v = self.m.get(key)?;
        if v.is_null() {
            return None;
        }
        let p = self.at(key);
        Some(node(v, &p, self.errs))
    }

    fn schemas(&mut self, key: &str) -> Vec<Structural> {
        let Some(v) = self.m.get(key) else {
            return Vec::new();
        };
        match v {
            Value::Null => Vec::new(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| node(x, &format!("{}.{key}[{i}]", self.path), self.errs))
                .collect(),
            other => {
                self.bad(key, other, "must be a list of schemas");
                Vec::new()
            }
        }
    }

    fn read(mut self, s: &mut Structural) {
        s.type_ = self.string("type").unwrap_or_default();
        let format = self.string("format").unwrap_or_default();
        if SUPPORTED_FORMATS.contains(&format.replace('-', "").as_str()) {
            s.format = format;
        }
        s.nullable = self.boolean("nullable").unwrap_or(false);
        s.default = self.m.get("default").filter(|d| !d.is_null()).cloned();
        s.has_title = self.string("title").is_some_and(|t| !t.is_empty());
        s.has_description = self.string("description").is_some_and(|t| !t.is_empty());
        if let Some(props) = self.m.get("properties").filter(|p| !p.is_null()) {
            match props.as_object() {
                Some(props) => {
                    for (k, v) in props {
                        let p = format!("{}.properties[{k}]", self.path);
                        s.properties.insert(k.clone(), node(v, &p, self.errs));
                    }
                }
                None => self.bad("properties", props, "must be an object"),
            }
        }
        s.additional = match self.m.get("additionalProperties") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(Additional::Allows(*b)),
            Some(_) => self
                .schema("additionalProperties")
                .map(|x| Additional::Schema(Box::new(x))),
        };
        s.items = match self.m.get("items") {
            // A list of schemas: check reports it; keep nothing.
            Some(Value::Array(_)) => {
                s.items_is_array = true;
                None
            }
            _ => self.schema("items").map(Box::new),
        };
        s.unsupported = UNSUPPORTED
            .iter()
            .filter(|(k, _)| self.m.get(*k).is_some_and(|v| !v.is_null()))
            .copied()
            .collect();
        s.preserve_unknown = self.boolean("x-kubernetes-preserve-unknown-fields");
        s.embedded = self
            .boolean("x-kubernetes-embedded-resource")
            .unwrap_or(false);
        s.int_or_string = self.boolean("x-kubernetes-int-or-string").unwrap_or(false);
        s.list_type = self.string("x-kubernetes-list-type");
        s.list_map_keys = self.strings("x-kubernetes-list-map-keys");
        s.map_type = self.string("x-kubernetes-map-type");
        s.has_validations = self
            .m
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());

        let vv = &mut s.vv;
        vv.maximum = self.float("maximum");
        vv.exclusive_maximum = self.boolean("exclusiveMaximum").unwrap_or(false);
        vv.minimum = self.float("minimum");
        vv.exclusive_minimum = self.boolean("exclusiveMinimum").unwrap_or(false);
        vv.max_length = self.int("maxLength");
        vv.min_length = self.int("minLength");
        vv.pattern = self
            .string("pattern")
            .filter(|p| !p.is_empty())
            .map(|source| Pattern {
                regex: regex::Regex::new(&source).ok(),
                source,
            });
        vv.max_items = self.int("maxItems");
        vv.min_items = self.int("minItems");
        vv.unique_items = self.boolean("uniqueItems").unwrap_or(false);
        vv.multiple_of = self.float("multipleOf");
        vv.enum_ = match self.m.get("enum") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => {
                let other = other.clone();
                self.bad("enum", &other, "must be a list");
                None
            }
        };
        vv.max_properties = self.int("maxProperties");
        vv.min_properties = self.int("minProperties");
        vv.required = self.strings("required");
        vv.all_of = self.schemas("allOf");
        vv.any_of = self.schemas("anyOf");
        vv.one_of = self.schemas("oneOf");
        vv.not = self.schema("not").map(Box::new);
    }
}
