//! A compact description of the Go types behind the API definitions, as
//! much as decoding a request body needs: each struct's JSON field names
//! and what each field holds. Built from the same k8s-openapi schemas the
//! documents come from, one root definition at a time on first use, and
//! kept (a few hundred bytes per struct) instead of the schemas.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use super::super::table;

/// What a JSON value must be to decode into a field.
#[derive(Clone, Debug)]
pub(super) enum Ty {
    String,
    /// `[]byte`: a base64 string.
    Bytes,
    Int32,
    Int64,
    Float,
    Bool,
    /// `intstr.IntOrString`: its own decoder, which errors are fatal.
    IntOrString,
    /// `resource.Quantity`: parsed when decoded.
    Quantity,
    /// `metav1.Time` / `MicroTime`: decoded from a string.
    Time,
    /// Raw JSON kept as is (RawExtension, JSON, FieldsV1, ...).
    Any,
    Struct(u32),
    Array(Box<Ty>),
    Map(Box<Ty>),
}

pub(super) struct Field {
    pub(super) name: Box<str>,
    pub(super) ty: Ty,
    /// The Go name of the inlined struct the field comes from (Go puts it
    /// in the path of type errors: `Volume.spec.volumes.VolumeSource.x`).
    pub(super) embedded: Option<&'static str>,
}

pub(super) struct Struct {
    /// `DeploymentSpec`: how type errors name the struct.
    pub(super) name: Box<str>,
    /// `v1.DeploymentSpec`: how type errors name the type.
    pub(super) go_type: Box<str>,
    /// Sorted by name.
    pub(super) fields: Box<[Field]>,
}

impl Struct {
    pub(super) fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .binary_search_by(|f| (*f.name).cmp(name))
            .ok()
            .and_then(|i| self.fields.get(i))
    }
}

#[derive(Default)]
pub(super) struct Index {
    by_name: HashMap<Box<str>, u32>,
    pub(super) structs: Vec<Struct>,
}

impl Index {
    pub(super) fn get(&self, id: u32) -> Option<&Struct> {
        self.structs.get(id as usize)
    }

    /// The Go spelling of a type, for `... of type <T>`.
    pub(super) fn go_type(&self, ty: &Ty) -> String {
        match ty {
            Ty::String => "string".into(),
            Ty::Bytes => "[]uint8".into(),
            Ty::Int32 | Ty::IntOrString => "int32".into(),
            Ty::Int64 => "int64".into(),
            Ty::Float => "float64".into(),
            Ty::Bool => "bool".into(),
            Ty::Quantity => "resource.Quantity".into(),
            Ty::Time => "v1.Time".into(),
            Ty::Any => "interface {}".into(),
            Ty::Struct(id) => self
                .get(*id)
                .map_or_else(String::new, |s| s.go_type.to_string()),
            Ty::Array(item) => format!("[]{}", self.go_type(item)),
            Ty::Map(item) => format!("map[string]{}", self.go_type(item)),
        }
    }
}

static INDEX: RwLock<Option<Index>> = RwLock::new(None);

/// The index with `definition` in it, and its struct id; None when we have
/// no schema for it.
pub(super) fn with_root(
    definition: &str,
) -> Option<(RwLockReadGuard<'static, Option<Index>>, u32)> {
    {
        let guard = INDEX.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = guard
            .as_ref()
            .and_then(|i| i.by_name.get(definition).copied())
        {
            return Some((guard, id));
        }
    }
    // Generated outside the lock: tens of milliseconds, once per root.
    let defs = generate(definition)?;
    {
        let mut guard = INDEX.write().unwrap_or_else(PoisonError::into_inner);
        let index = guard.get_or_insert_with(Index::default);
        let mut builder = Builder { defs: &defs, index };
        builder.definition(definition);
    }
    let guard = INDEX.read().unwrap_or_else(PoisonError::into_inner);
    let id = guard
        .as_ref()
        .and_then(|i| i.by_name.get(definition).copied())?;
    Some((guard, id))
}

/// Every definition `root` reaches, as schemars generates them.
fn generate(root: &str) -> Option<Map<String, Value>> {
    let schema_fn = table::lookup(root)?;
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    schema_fn(&mut generator);
    Some(generator.take_definitions(false))
}

const REF_PREFIX: &str = "#/definitions/";

/// Definitions with a decoder of their own, whatever their schema says.
fn special(name: &str) -> Option<Ty> {
    Some(match name.rsplit('.').next().unwrap_or(name) {
        "IntOrString" => Ty::IntOrString,
        "Quantity" => Ty::Quantity,
        "Time" | "MicroTime" => Ty::Time,
        "RawExtension"
        | "JSON"
        | "FieldsV1"
        | "Patch"
        | "JSONSchemaPropsOrArray"
        | "JSONSchemaPropsOrBool"
        | "JSONSchemaPropsOrStringArray" => Ty::Any,
        _ => return None,
    })
}

/// Go structs with no fields, which the schemas show as bare objects.
fn empty_struct(name: &str) -> bool {
    name.ends_with(".CustomResourceSubresourceStatus")
}

/// The inlined struct a field comes from, for the few API types that
/// embed one besides TypeMeta.
fn embedded(definition: &str, field: &str) -> Option<&'static str> {
    let kind = definition.strip_prefix("io.k8s.api.core.v1.")?;
    match kind {
        "Volume" if field != "name" => Some("VolumeSource"),
        "EphemeralContainer" if field != "targetContainerName" => Some("EphemeralContainerCommon"),
        "Probe" if matches!(field, "exec" | "httpGet" | "tcpSocket" | "grpc") => {
            Some("ProbeHandler")
        }
        "PersistentVolumeSpec"
            if !matches!(
                field,
                "accessModes"
                    | "capacity"
                    | "claimRef"
                    | "mountOptions"
                    | "nodeAffinity"
                    | "persistentVolumeReclaimPolicy"
                    | "storageClassName"
                    | "volumeMode"
                    | "volumeAttributesClassName"
            ) =>
        {
            Some("PersistentVolumeSource")
        }
        _ => None,
    }
}

struct Builder<'a> {
    defs: &'a Map<String, Value>,
    index: &'a mut Index,
}

impl Builder<'_> {
    fn definition(&mut self, name: &str) -> Ty {
        if let Some(ty) = special(name) {
            return ty;
        }
        if let Some(&id) = self.index.by_name.get(name) {
            return Ty::Struct(id);
        }
        let Some(schema) = self.defs.get(name) else {
            return Ty::Any;
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        if properties.is_none() && !empty_struct(name) {
            return self.ty(schema);
        }
        // Registered before its fields, so recursive types end.
        let id = self.index.structs.len() as u32;
        self.index.by_name.insert(name.into(), id);
        let mut segments = name.rsplit('.');
        let short = segments.next().unwrap_or(name);
        let package = segments.next().unwrap_or_default();
        self.index.structs.push(Struct {
            name: short.into(),
            go_type: format!("{package}.{short}").into(),
            fields: Box::new([]),
        });
        let mut fields: Vec<Field> = properties
            .into_iter()
            .flatten()
            .map(|(field, schema)| Field {
                name: field.as_str().into(),
                ty: self.ty(schema),
                embedded: embedded(name, field),
            })
            .collect();
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(entry) = self.index.structs.get_mut(id as usize) {
            entry.fields = fields.into_boxed_slice();
        }
        Ty::Struct(id)
    }

    fn ty(&mut self, schema: &Value) -> Ty {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.strip_prefix(REF_PREFIX).unwrap_or(reference);
            return self.definition(name);
        }
        let flag = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
        if flag("x-kubernetes-preserve-unknown-fields") {
            return Ty::Any;
        }
        if flag("x-kubernetes-int-or-string") {
            return Ty::IntOrString;
        }
        let format = schema.get("format").and_then(Value::as_str);
        let ty = match schema.get("type") {
            Some(Value::String(t)) => t.as_str(),
            // `["string", "null"]`: null is accepted everywhere anyway.
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or_default(),
            _ => "",
        };
        match (ty, format) {
            ("string", Some("byte")) => Ty::Bytes,
            ("string", Some("date-time")) => Ty::Time,
            ("string", _) => Ty::String,
            ("integer", Some("int32")) => Ty::Int32,
            ("integer", _) => Ty::Int64,
            ("number", _) => Ty::Float,
            ("boolean", _) => Ty::Bool,
            ("array", _) => Ty::Array(Box::new(
                schema.get("items").map_or(Ty::Any, |items| self.ty(items)),
            )),
            ("object", _) => match schema.get("additionalProperties") {
                Some(item @ Value::Object(_)) => Ty::Map(Box::new(self.ty(item))),
                _ => Ty::Any,
            },
            _ => Ty::Any,
        }
    }
}
