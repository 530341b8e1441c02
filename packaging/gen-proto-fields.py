#!/usr/bin/env python3
"""Generates src/apiserver/proto/fields_<group>.rs: the field tables the
Kubernetes protobuf decoder uses (tag -> JSON name, cardinality, type).

Sources (read, never built):
  * the k8s-pb crate (prost-generated Rust): messages, tags, wire types;
  * the k8s-openapi crate: each struct's JSON field names;
  * the Go API types (k8s.io/api, k8s.io/apimachinery,
    k8s.io/apiextensions-apiserver checkouts): which scalar fields are Go
    pointers or lack `omitempty`. gogo-protobuf writes every non-pointer
    scalar, even when zero, whereas Go's JSON drops zero `omitempty` fields;
    the decoder needs to know which zeros JSON would have kept.

Usage:
  python3 packaging/gen-proto-fields.py \\
      --go-api DIR --go-apimachinery DIR --go-apiextensions DIR \\
      [--k8s-pb DIR] [--k8s-openapi DIR] [--out src/apiserver/proto]
Each --go-* is a checkout of that repository's root (github.com/kubernetes/
api, apimachinery, apiextensions-apiserver); the committed tables were made
from api 10b39a39, apimachinery eed236ce, apiextensions-apiserver 1aa2717a
(mid 2026; Go struct tags never change for a released field). Fields that
k8s-openapi 0.29 (v1.33) and the Go tree cannot name (alpha fields such as
PodSpec.workloadRef) are left out with a warning; the decoder skips them.
The crate directories default to ~/.cargo/registry/src/*/k8s-pb-0.9.0 and
k8s-openapi-0.29.0 (run `cargo fetch` in a crate depending on them, or
unpack their .crate files).
"""

import argparse
import glob
import os
import re
import sys

# API packages whose kinds the server serves: k8s-pb module path -> group
# file. Messages reachable from these packages' kinds get a table.
PACKAGES = {
    "api/core/v1": "core",
    "api/events/v1": "other",
    "api/apps/v1": "apps",
    "api/batch/v1": "apps",
    "api/autoscaling/v1": "apps",
    "api/autoscaling/v2": "apps",
    "api/networking/v1": "other",
    "api/discovery/v1": "other",
    "api/coordination/v1": "other",
    "api/rbac/v1": "other",
    "api/storage/v1": "other",
    "api/policy/v1": "other",
    "api/scheduling/v1": "other",
    "api/authentication/v1": "other",
    "api/authorization/v1": "other",
    "apiextensions_apiserver/pkg/apis/apiextensions/v1": "apiext",
}
# Packages whose messages are only reached through references.
SUPPORT = {
    "apimachinery/pkg/apis/meta/v1": "meta",
    "apimachinery/pkg/runtime": "meta",
    "apimachinery/pkg/util/intstr": "meta",
    "apimachinery/pkg/api/resource": "meta",
}
# Extra roots outside the served packages' kinds.
EXTRA_ROOTS = ["meta.v1.DeleteOptions"]

# Messages with a JSON form of their own (see decode.rs), by short name.
SPECIAL = {
    "meta.v1.Time": "T",
    "meta.v1.MicroTime": "U",
    "meta.v1.Duration": "N",
    "meta.v1.FieldsV1": "F",
    "util.intstr.IntOrString": "X",
    "api.resource.Quantity": "Q",
    "runtime.RawExtension": "E",
    "apiextensions.v1.JSON": "J",
    "apiextensions.v1.JSONSchemaPropsOrArray": "OrArray",
    "apiextensions.v1.JSONSchemaPropsOrBool": "OrBool",
    "apiextensions.v1.JSONSchemaPropsOrStringArray": "OrStrings",
}

SCALARS = {"string": "S", "bytes": "B", "int32": "I", "int64": "L", "bool": "Z", "double": "D"}


def short_name(modpath, msg):
    """`api/core/v1` + Pod -> core.v1.Pod; apimachinery/pkg/apis/meta/v1 ->
    meta.v1.X; apimachinery/pkg/util/intstr -> util.intstr.X."""
    parts = modpath.split("/")
    if parts[0] == "api":
        parts = parts[1:]
    elif parts[0] == "apimachinery":
        parts = parts[2:]
        if parts[0] == "apis":
            parts = parts[1:]
    elif parts[0] == "apiextensions_apiserver":
        parts = parts[3:]
    return ".".join(parts + [msg])


def proto_package(modpath):
    return "k8s.io." + modpath.replace("/", ".")


FIELD_ATTR = re.compile(r'#\[prost\((.*)\)\]')


def parse_pb(root):
    """Returns {modpath: {msg: [(tag, rust_name, label, type, target)]}}."""
    out = {}
    for modpath in list(PACKAGES) + list(SUPPORT):
        path = os.path.join(root, "src", modpath, "mod.rs")
        text = open(path, encoding="utf-8").read()
        # Field-less messages are written `pub struct X {}`.
        msgs = {m.group(1): [] for m in re.finditer(r"^pub struct (\w+) \{\}$", text, re.M)}
        for m in re.finditer(r"^pub struct (\w+) \{\n(.*?)^\}", text, re.S | re.M):
            name, body = m.group(1), m.group(2)
            fields = []
            lines = body.split("\n")
            i = 0
            while i < len(lines):
                a = FIELD_ATTR.search(lines[i])
                if not a:
                    i += 1
                    continue
                attr = a.group(1)
                decl = ""
                i += 1
                while i < len(lines):
                    decl += lines[i].strip()
                    i += 1
                    # A type can span lines (`BTreeMap<\n K,\n V,\n>`).
                    if decl.endswith(",") and decl.count("<") == decl.count(">"):
                        break
                fields.append(parse_field(modpath, attr, decl))
            msgs[name] = fields
        out[modpath] = msgs
    return out


def resolve(modpath, rust_type):
    """Resolves a prost type path (`super::super::x::Y` or `Y`) to a short
    message name."""
    segs = rust_type.split("::")
    base = modpath.split("/")
    while segs and segs[0] == "super":
        base = base[:-1]
        segs = segs[1:]
    mod = "/".join(base + segs[:-1])
    return short_name(mod, segs[-1])


def parse_field(modpath, attr, decl):
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    rust = re.match(r"pub (?:r#)?(\w+):", decl).group(1)
    # Joined multi-line generics keep a trailing comma: `Vec<X,>`.
    ty = decl.split(":", 1)[1].strip().rstrip(",").replace(",>", ">")
    inner = re.sub(r"^::core::option::Option<(.*)>$", r"\1", ty)
    inner = re.sub(r"^::prost::alloc::vec::Vec<(.*)>$", r"\1", inner)
    inner = re.sub(r"^::prost::alloc::boxed::Box<(.*)>$", r"\1", inner)
    kind = attr.split(",")[0].strip()
    if kind.startswith("btree_map"):
        value = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
        if value == "message":
            target = resolve(modpath, re.search(r"BTreeMap<[^,]+,\s*(.*)>$", ty).group(1))
            return (tag, rust, "M", "m", target)
        return (tag, rust, "M", SCALARS[value], None)
    label = "R" if "repeated" in attr else "O"
    if kind.startswith("bytes"):
        kind = "bytes"
    if kind == "message":
        return (tag, rust, label, "m", resolve(modpath, inner))
    return (tag, rust, label, SCALARS[kind], None)


def norm(name):
    return name.replace("r#", "").replace("_", "").lower()


def parse_openapi(root):
    """Returns {short message name: {normalized rust name: json name}}."""
    out = {}
    base = os.path.join(root, "src", "v1_33")
    for modpath in list(PACKAGES) + list(SUPPORT):
        for path in glob.glob(os.path.join(base, modpath, "*.rs")):
            text = open(path, encoding="utf-8").read()
            s = re.search(r"^pub struct (\w+)", text, re.M)
            if not s:
                continue
            keys = {}
            for k in re.finditer(r'"([^"]+)" => Field::Key_(\w+),', text):
                keys[norm(k.group(2))] = k.group(1)
            out[short_name(modpath, s.group(1))] = keys
    return out


GO_DIRS = {
    "apimachinery/pkg/apis/meta/v1": ("apimachinery", "pkg/apis/meta/v1"),
    "apimachinery/pkg/runtime": ("apimachinery", "pkg/runtime"),
    "apimachinery/pkg/util/intstr": ("apimachinery", "pkg/util/intstr"),
    "apimachinery/pkg/api/resource": ("apimachinery", "pkg/api/resource"),
    "apiextensions_apiserver/pkg/apis/apiextensions/v1": ("apiextensions", "pkg/apis/apiextensions/v1"),
}

# `Name Type `tags`` or an embedded `pkg.Type `tags``.
GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?(\*?[\w.\[\]*]+)\s+`([^`]*)`")


def parse_go(roots):
    """Returns ({short msg: {tag: (json, omitempty, pointer)}}, {short
    names of `type X []string` wrappers})."""
    fields, wrappers = {}, set()
    for modpath in list(PACKAGES) + list(SUPPORT):
        repo, sub = GO_DIRS.get(modpath, ("api", modpath[len("api/"):]))
        for path in glob.glob(os.path.join(roots[repo], sub, "*.go")):
            if path.endswith("_test.go") or "generated" in path or "zz_" in path:
                continue
            text = open(path, encoding="utf-8").read()
            for w in re.finditer(r"^type (\w+) \[\]string$", text, re.M):
                wrappers.add(short_name(modpath, w.group(1)))
            for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.S | re.M):
                tags = {}
                for line in m.group(2).split("\n"):
                    f = GO_FIELD.match(line)
                    if not f:
                        continue
                    pb = re.search(r'protobuf:"\w+,(\d+),', f.group(3))
                    js = re.search(r'json:"([^"]*)"', f.group(3))
                    if not pb or not js:
                        continue
                    opts = js.group(1).split(",")
                    tags[int(pb.group(1))] = (opts[0], "omitempty" in opts[1:], f.group(2).startswith("*"))
                fields[short_name(modpath, m.group(1))] = tags
    return fields, wrappers


def roots_of(pb):
    """Kinds of the served packages: messages with ObjectMeta at tag 1 that
    are not lists."""
    roots = list(EXTRA_ROOTS)
    for modpath in PACKAGES:
        for msg, fields in sorted(pb[modpath].items()):
            if msg.endswith("List"):
                continue
            if any(f[0] == 1 and f[4] == "meta.v1.ObjectMeta" for f in fields):
                roots.append(short_name(modpath, msg))
    return roots


def main():
    ap = argparse.ArgumentParser()
    home = os.path.expanduser("~/.cargo/registry/src")
    ap.add_argument("--k8s-pb", default=next(iter(glob.glob(home + "/*/k8s-pb-0.9.0")), None))
    ap.add_argument("--k8s-openapi", default=next(iter(glob.glob(home + "/*/k8s-openapi-0.29.0")), None))
    ap.add_argument("--go-api", required=True)
    ap.add_argument("--go-apimachinery", required=True)
    ap.add_argument("--go-apiextensions", required=True)
    ap.add_argument("--out", default="src/apiserver/proto")
    args = ap.parse_args()

    pb = parse_pb(args.k8s_pb)
    openapi = parse_openapi(args.k8s_openapi)
    go, wrappers = parse_go({"api": args.go_api, "apimachinery": args.go_apimachinery, "apiextensions": args.go_apiextensions})

    # prost CamelCases message names (HTTPGetAction -> HttpGetAction); the
    # Go and OpenAPI sources have the proto's own spelling.
    real = {n.lower(): n for n in list(go) + list(openapi) + list(wrappers)}

    def canon(name):
        return real.get(name.lower(), name)

    by_name, group_of = {}, {}
    for modpath, msgs in pb.items():
        for msg, fields in msgs.items():
            name = canon(short_name(modpath, msg))
            by_name[name] = [(t, r, lb, ty, target and canon(target)) for t, r, lb, ty, target in fields]
            group_of[name] = PACKAGES.get(modpath) or SUPPORT[modpath]

    # Reachability from the served kinds.
    roots = [canon(r) for r in roots_of(pb)]
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in SPECIAL or name in wrappers:
            continue
        for f in by_name[name]:
            if f[4] and f[4] not in seen:
                todo.append(f[4])

    warnings = []
    files = {}
    for name in sorted(seen):
        if name in SPECIAL:
            continue
        entries = []
        if name in wrappers:
            entries = None
        else:
            for tag, rust, label, ty, target in by_name[name]:
                gof = go.get(name, {}).get(tag)
                json = openapi.get(name, {}).get(norm(rust))
                if gof and gof[0] == "" and ty == "m":
                    # An embedded struct with `json:",inline"`: its fields
                    # belong to this object.
                    json, label = "", "Inl"
                elif json is None and gof:
                    json = gof[0]
                if json is None:
                    warnings.append(f"{name}.{rust}: no JSON name")
                    continue
                if gof and gof[0] != json:
                    warnings.append(f"{name}.{rust}: Go says {gof[0]}, k8s-openapi {json}")
                if label == "O" and ty != "m":
                    if gof is None:
                        warnings.append(f"{name}.{rust}: no Go field, zero values dropped")
                    elif gof[2] or not gof[1]:
                        label = "P"  # a pointer or not omitempty: JSON keeps zeros
                if ty == "m":
                    ty = SPECIAL.get(target) or ("W" if target in wrappers else f'm("{target}")')
                entries.append(f'({tag},"{json}",{label},{ty})')
        files.setdefault(group_of[name], []).append((name, entries))

    for w in warnings:
        print("warning:", w, file=sys.stderr)
    count = 0
    for group, msgs in sorted(files.items()):
        count += write_group(args.out, group, msgs)
    print(f"{count} messages, {len(roots)} kinds", file=sys.stderr)


HEADER = """// @generated by packaging/gen-proto-fields.py from the k8s-pb 0.9.0 and
// k8s-openapi 0.29.0 crates and the Go API types; do not edit. Regenerate:
//   python3 packaging/gen-proto-fields.py --go-api <k8s.io/api> \\
//     --go-apimachinery <k8s.io/apimachinery> --go-apiextensions <k8s.io/apiextensions-apiserver>
// Per message (sorted by name): (tag, JSON name, cardinality, type); see
// `Card` and `Ty` in tables.rs.
"""


def write_group(out, group, msgs):
    lines = [HEADER, "use super::tables::{m, Card::*, Msg, Ty::*};", "",
             "#[rustfmt::skip]", "pub(super) static MESSAGES: &[Msg] = &["]
    for name, entries in msgs:
        if entries is None:
            continue
        head = f'("{name}", &['
        cur = head
        for e in entries:
            if len(cur) + len(e) > 110:
                lines.append(cur)
                cur = "    "
            cur += e + ","
        lines.append(cur + "]),")
    lines.append("];")
    path = os.path.join(out, f"fields_{group}.rs")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"{path}: {len(lines)} lines", file=sys.stderr)
    return sum(1 for _, e in msgs if e is not None)


if __name__ == "__main__":
    main()
