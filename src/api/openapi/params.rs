//! The standard query and path parameters of the resource operations, with
//! upstream's names and descriptions. kubectl looks for `fieldValidation`
//! among a PATCH operation's own parameters to decide whether the server
//! validates fields itself.

use serde_json::{json, Value};

use super::schemas::Flavor;

pub(super) struct Param {
    name: &'static str,
    ty: &'static str,
    desc: &'static str,
}

const fn p(name: &'static str, ty: &'static str, desc: &'static str) -> Param {
    Param { name, ty, desc }
}

pub(super) const PRETTY: Param = p(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
);
const DRY_RUN: Param = p(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = p(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
);
const FIELD_VALIDATION: Param = p(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
);
const FORCE: Param = p(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);
const GRACE_PERIOD: Param = p(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
);
const IGNORE_READ_ERROR: Param = p(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
);
const ORPHAN: Param = p(
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
);
const PROPAGATION: Param = p(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
);
const ALLOW_BOOKMARKS: Param = p(
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
);
const CONTINUE: Param = p(
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.",
);
const FIELD_SELECTOR: Param = p(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = p(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = p(
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
);
const RESOURCE_VERSION: Param = p(
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const RESOURCE_VERSION_MATCH: Param = p(
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const SEND_INITIAL_EVENTS: Param = p(
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent.",
);
const TIMEOUT: Param = p(
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
const WATCH: Param = p(
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);
const CONTAINER: Param = p(
    "container",
    "string",
    "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
);
const FOLLOW: Param = p(
    "follow",
    "boolean",
    "Follow the log stream of the pod. Defaults to false.",
);
const PREVIOUS: Param = p(
    "previous",
    "boolean",
    "Return previous terminated container logs. Defaults to false.",
);
const SINCE_SECONDS: Param = p(
    "sinceSeconds",
    "integer",
    "A relative time in seconds before the current time from which to show logs.",
);
const TAIL_LINES: Param = p(
    "tailLines",
    "integer",
    "If set, the number of lines from the end of the logs to show.",
);
const TIMESTAMPS: Param = p(
    "timestamps",
    "boolean",
    "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
);
const LIMIT_BYTES: Param = p(
    "limitBytes",
    "integer",
    "If set, the number of bytes to read from the server before terminating the log output.",
);

pub(super) const NONE: &[&Param] = &[];
pub(super) const LIST: &[&Param] = &[
    &ALLOW_BOOKMARKS,
    &CONTINUE,
    &FIELD_SELECTOR,
    &LABEL_SELECTOR,
    &LIMIT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT,
    &WATCH,
];
pub(super) const WRITE: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
pub(super) const PATCH: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
pub(super) const DELETE: &[&Param] = &[
    &DRY_RUN,
    &GRACE_PERIOD,
    &IGNORE_READ_ERROR,
    &ORPHAN,
    &PROPAGATION,
];
pub(super) const DELETE_COLLECTION: &[&Param] = &[
    &CONTINUE,
    &DRY_RUN,
    &FIELD_SELECTOR,
    &GRACE_PERIOD,
    &IGNORE_READ_ERROR,
    &LABEL_SELECTOR,
    &LIMIT,
    &ORPHAN,
    &PROPAGATION,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT,
];
pub(super) const LOG: &[&Param] = &[
    &CONTAINER,
    &FOLLOW,
    &LIMIT_BYTES,
    &PREVIOUS,
    &SINCE_SECONDS,
    &TAIL_LINES,
    &TIMESTAMPS,
];

/// A query parameter as the document flavor spells it.
pub(super) fn query(param: &Param, flavor: Flavor) -> Value {
    render(param.name, param.ty, param.desc, "query", flavor)
}

/// The `{namespace}` / `{name}` path parameter.
pub(super) fn path(name: &str, kind: &str, flavor: Flavor) -> Value {
    let desc = if name == "namespace" {
        "object name and auth scope, such as for teams and projects".to_owned()
    } else {
        format!("name of the {kind}")
    };
    let mut param = render(name, "string", &desc, "path", flavor);
    param["required"] = true.into();
    param
}

fn render(name: &str, ty: &str, desc: &str, location: &str, flavor: Flavor) -> Value {
    match flavor {
        Flavor::V2 => json!({
            "description": desc, "in": location, "name": name, "type": ty, "uniqueItems": true,
        }),
        Flavor::V3 => json!({
            "description": desc, "in": location, "name": name,
            "schema": { "type": ty, "uniqueItems": true },
        }),
    }
}
