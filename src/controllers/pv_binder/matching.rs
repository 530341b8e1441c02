//! Which PersistentVolume a claim may bind to (upstream findMatchingVolume
//! and checkVolumeSatisfyClaim): class, access modes, size, selector,
//! volume mode; the smallest fitting volume wins, a volume pre-bound to the
//! claim first.

use serde_json::Value;

use crate::api::selector::LabelSelector;
use crate::controllers::objects;
use crate::controllers::resourcequota::quantity::Quantity;

pub const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
pub const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";

fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

/// The claim's class: spec, else the beta annotation, else the default
/// class for a claim that names none (None = no class at all).
pub fn claim_class(claim: &Value, default_class: Option<&str>) -> String {
    if let Some(c) = objects::annotation(claim, BETA_CLASS) {
        return c.to_string();
    }
    match claim.pointer("/spec/storageClassName") {
        Some(Value::String(c)) => c.clone(),
        _ => default_class.unwrap_or("").to_string(),
    }
}

pub fn volume_class(pv: &Value) -> &str {
    objects::annotation(pv, BETA_CLASS)
        .or_else(|| text(pv, "/spec/storageClassName"))
        .unwrap_or("")
}

pub fn requested(claim: &Value) -> Quantity {
    text(claim, "/spec/resources/requests/storage")
        .and_then(Quantity::parse)
        .unwrap_or_default()
}

pub fn capacity(pv: &Value) -> Quantity {
    text(pv, "/spec/capacity/storage")
        .and_then(Quantity::parse)
        .unwrap_or_default()
}

fn access_modes(obj: &Value) -> Vec<&str> {
    obj.pointer("/spec/accessModes")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn volume_mode(obj: &Value) -> &str {
    text(obj, "/spec/volumeMode").unwrap_or("Filesystem")
}

/// Whether the PV's claimRef names this claim (uid unset or equal).
pub fn bound_to(pv: &Value, claim: &Value) -> bool {
    let Some(r) = pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) else {
        return false;
    };
    let uid = text(r, "/uid").unwrap_or("");
    text(r, "/name") == Some(objects::name(claim))
        && text(r, "/namespace") == Some(objects::namespace(claim))
        && (uid.is_empty() || uid == objects::uid(claim))
}

pub fn has_claim_ref(pv: &Value) -> bool {
    pv.pointer("/spec/claimRef").is_some_and(|r| !r.is_null())
}

/// Why `pv` cannot serve `claim` of class `class` (upstream
/// checkVolumeSatisfyClaim texts), or None when it can.
pub fn mismatch(pv: &Value, claim: &Value, class: &str) -> Option<String> {
    if capacity(pv).nanos < requested(claim).nanos {
        return Some("requested PV is too small".into());
    }
    if volume_class(pv) != class {
        return Some("storageClassName does not match".into());
    }
    if volume_mode(pv) != volume_mode(claim) {
        return Some("incompatible volumeMode".into());
    }
    let modes = access_modes(pv);
    if !access_modes(claim).iter().all(|m| modes.contains(m)) {
        return Some("incompatible accessMode".into());
    }
    None
}

fn selector_matches(pv: &Value, claim: &Value) -> bool {
    match claim.pointer("/spec/selector") {
        None | Some(Value::Null) => true,
        Some(sel) => LabelSelector::from_json(sel).is_ok_and(|s| s.matches_object(pv)),
    }
}

/// The volume for an unbound claim: one pre-bound to it if it fits, else
/// the smallest Available volume that matches (fewest access modes on a tie).
pub fn best_match<'a>(pvs: &'a [&'a Value], claim: &Value, class: &str) -> Option<&'a Value> {
    let fits = |pv: &Value| {
        !objects::is_deleting(pv)
            && mismatch(pv, claim, class).is_none()
            && selector_matches(pv, claim)
    };
    if let Some(pre) = pvs.iter().find(|pv| bound_to(pv, claim) && fits(pv)) {
        return Some(pre);
    }
    pvs.iter()
        .filter(|pv| !has_claim_ref(pv))
        .filter(|pv| {
            matches!(
                text(pv, "/status/phase"),
                None | Some("Available") | Some("Pending")
            )
        })
        .filter(|pv| fits(pv))
        .min_by_key(|pv| {
            (
                capacity(pv).nanos,
                access_modes(pv).len(),
                objects::name(pv).to_string(),
            )
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(name: &str, size: &str, class: &str, modes: &[&str]) -> Value {
        json!({"metadata": {"name": name, "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "storageClassName": class, "accessModes": modes},
            "status": {"phase": "Available"}})
    }

    fn claim(size: &str, modes: &[&str]) -> Value {
        json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u"},
            "spec": {"resources": {"requests": {"storage": size}}, "accessModes": modes}})
    }

    #[test]
    fn the_smallest_fitting_volume_wins() {
        let vols = [
            pv("big", "10Gi", "", &["ReadWriteOnce"]),
            pv("small", "1Gi", "", &["ReadWriteOnce"]),
            pv("tiny", "500Mi", "", &["ReadWriteOnce"]),
            pv("rox", "1Gi", "", &["ReadOnlyMany"]),
            pv("classy", "1Gi", "gold", &["ReadWriteOnce"]),
        ];
        let refs: Vec<&Value> = vols.iter().collect();
        let c = claim("1Gi", &["ReadWriteOnce"]);
        assert_eq!(objects::name(best_match(&refs, &c, "").unwrap()), "small");
        assert_eq!(
            objects::name(best_match(&refs, &c, "gold").unwrap()),
            "classy"
        );
        assert!(best_match(&refs, &claim("20Gi", &["ReadWriteOnce"]), "").is_none());
        let mut sel = c.clone();
        sel["spec"]["selector"] = json!({"matchLabels": {"tier": "slow"}});
        assert!(best_match(&refs, &sel, "").is_none());
        let mut block = c.clone();
        block["spec"]["volumeMode"] = json!("Block");
        assert!(best_match(&refs, &block, "").is_none());
    }

    #[test]
    fn pre_bound_and_bound_volumes() {
        let mut taken = pv("taken", "1Gi", "", &["ReadWriteOnce"]);
        taken["spec"]["claimRef"] = json!({"name": "other", "namespace": "ns"});
        let mut mine = pv("mine", "5Gi", "", &["ReadWriteOnce"]);
        mine["spec"]["claimRef"] = json!({"name": "c", "namespace": "ns"});
        let free = pv("free", "1Gi", "", &["ReadWriteOnce"]);
        let vols = [taken, mine, free];
        let refs: Vec<&Value> = vols.iter().collect();
        let c = claim("1Gi", &["ReadWriteOnce"]);
        assert_eq!(objects::name(best_match(&refs, &c, "").unwrap()), "mine");
        assert_eq!(
            mismatch(&vols[2], &claim("2Gi", &[]), "").as_deref(),
            Some("requested PV is too small")
        );
    }

    #[test]
    fn classes_come_from_spec_annotation_or_default() {
        let mut c = claim("1Gi", &[]);
        assert_eq!(claim_class(&c, Some("standard")), "standard");
        assert_eq!(claim_class(&c, None), "");
        c["spec"]["storageClassName"] = json!("");
        assert_eq!(claim_class(&c, Some("standard")), "");
        c["metadata"]["annotations"] = json!({BETA_CLASS: "old"});
        assert_eq!(claim_class(&c, None), "old");
    }
}
