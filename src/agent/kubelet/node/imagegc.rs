//! Image garbage collection as upstream's image manager does it: every 5
//! minutes note which images exist and which containers use them; when the
//! image filesystem is at least `high` percent full, remove unused images
//! (never pinned or protected ones, nor any seen less than 2 minutes ago),
//! least recently used first, until usage is down to `low` percent.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch as channel;

use super::sysinfo::{self, FsStats};
use crate::agent::cri::api::{self, Image};
use crate::agent::cri::{Cri, Error as CriError};

/// Upstream's ImageGCPeriod.
const PERIOD: Duration = Duration::from_secs(300);
/// Upstream's ImageMinimumGCAge.
const MIN_AGE: Duration = Duration::from_secs(120);

pub struct Policy {
    pub high: u8,
    pub low: u8,
    /// Names or ids never removed (the pause image).
    pub protected: Vec<String>,
    /// The image filesystem when the runtime does not name it.
    pub fallback_fs: PathBuf,
}

/// When each image was first seen and last seen in use.
#[derive(Default)]
pub struct Tracker {
    records: HashMap<String, Record>,
}

struct Record {
    first_seen: Instant,
    last_used: Option<Instant>,
}

fn used(image: &Image, in_use: &HashSet<String>) -> bool {
    in_use.contains(&image.id)
        || image
            .repo_tags
            .iter()
            .chain(&image.repo_digests)
            .any(|n| in_use.contains(n))
}

fn protected(image: &Image, names: &[String]) -> bool {
    image.pinned
        || names.iter().any(|p| {
            image.id == *p
                || image.repo_tags.iter().chain(&image.repo_digests).any(|n| {
                    n == p
                        // "pause:3.9" is "docker.io/library/pause:3.9" to containerd.
                        || n.strip_prefix("docker.io/library/") == Some(p)
                        || n.strip_prefix("docker.io/") == Some(p)
                })
        })
}

impl Tracker {
    /// Records the images there are now and which are in use; forgets
    /// images that are gone.
    pub fn detect(&mut self, images: &[Image], in_use: &HashSet<String>, now: Instant) {
        let present: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
        self.records.retain(|id, _| present.contains(id.as_str()));
        for image in images {
            let rec = self.records.entry(image.id.clone()).or_insert(Record {
                first_seen: now,
                last_used: None,
            });
            if used(image, in_use) {
                rec.last_used = Some(now);
            }
        }
    }
}

/// Bytes to free, when usage reached `high` percent: down to `low` percent.
pub fn amount_to_free(fs: FsStats, high: u8, low: u8) -> Option<u64> {
    if high >= 100 || fs.capacity == 0 {
        return None;
    }
    let used = fs.capacity.saturating_sub(fs.available);
    let usage = u128::from(used) * 100 / u128::from(fs.capacity);
    if usage < u128::from(high) {
        return None;
    }
    let want_available = (u128::from(fs.capacity) * u128::from(100 - low.min(100)) / 100) as u64;
    Some(want_available.saturating_sub(fs.available)).filter(|n| *n > 0)
}

/// The images to remove (ids), least recently used first, until `to_free`
/// bytes are covered (or the candidates run out).
pub fn plan(
    images: &[Image],
    tracker: &Tracker,
    in_use: &HashSet<String>,
    protected_names: &[String],
    now: Instant,
    to_free: u64,
) -> Vec<(String, u64)> {
    let mut candidates: Vec<(&Image, &Record)> = images
        .iter()
        .filter(|i| !used(i, in_use) && !protected(i, protected_names))
        .filter_map(|i| tracker.records.get(&i.id).map(|r| (i, r)))
        .filter(|(_, r)| now.saturating_duration_since(r.first_seen) >= MIN_AGE)
        .collect();
    // Never used sorts first (None < Some), then oldest use, then oldest seen.
    candidates.sort_by_key(|(_, r)| (r.last_used, r.first_seen));
    let mut freed = 0u64;
    let mut out = Vec::new();
    for (image, _) in candidates {
        if freed >= to_free {
            break;
        }
        freed = freed.saturating_add(image.size);
        out.push((image.id.clone(), image.size));
    }
    out
}

/// Where the runtime keeps images: the mountpoint its ImageFsInfo names,
/// else `fallback` (containerd's root).
pub async fn image_fs(cri: &Cri, fallback: &std::path::Path) -> PathBuf {
    let named = cri
        .images()
        .image_fs_info(api::ImageFsInfoRequest {})
        .await
        .ok()
        .and_then(|r| {
            r.into_inner()
                .image_filesystems
                .into_iter()
                .find_map(|f| f.fs_id.map(|id| id.mountpoint))
        })
        .filter(|m| !m.is_empty());
    named.map_or_else(|| fallback.to_path_buf(), PathBuf::from)
}

pub async fn run(cri: Cri, policy: Policy, mut stop: channel::Receiver<bool>) {
    let mut tracker = Tracker::default();
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = collect(&cri, &policy, &mut tracker).await {
            tracing::debug!(error = %e, "image garbage collection skipped");
        }
    }
}

async fn collect(cri: &Cri, policy: &Policy, tracker: &mut Tracker) -> Result<(), CriError> {
    let images = cri
        .images()
        .list_images(api::ListImagesRequest { filter: None })
        .await?
        .into_inner()
        .images;
    let containers = cri
        .runtime()
        .list_containers(api::ListContainersRequest { filter: None })
        .await?
        .into_inner()
        .containers;
    let in_use: HashSet<String> = containers
        .iter()
        .flat_map(|c| {
            [
                Some(c.image_ref.clone()),
                c.image.as_ref().map(|i| i.image.clone()),
            ]
        })
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    let now = Instant::now();
    tracker.detect(&images, &in_use, now);
    let path = image_fs(cri, &policy.fallback_fs).await;
    let fs = match sysinfo::fs_stats(&path) {
        Ok(fs) => fs,
        Err(e) => {
            tracing::debug!(error = e, "image filesystem unreadable");
            return Ok(());
        }
    };
    let Some(to_free) = amount_to_free(fs, policy.high, policy.low) else {
        return Ok(());
    };
    tracing::info!(
        bytes = to_free,
        high = policy.high,
        low = policy.low,
        "image filesystem over the high threshold; removing unused images"
    );
    let mut freed = 0u64;
    for (id, size) in plan(&images, tracker, &in_use, &policy.protected, now, to_free) {
        let spec = api::ImageSpec {
            image: id.clone(),
            ..Default::default()
        };
        match cri
            .images()
            .remove_image(api::RemoveImageRequest { image: Some(spec) })
            .await
        {
            Ok(_) => {
                tracing::info!(image = id, size, "removed unused image");
                freed = freed.saturating_add(size);
            }
            Err(e) => tracing::warn!(image = id, error = %e, "removing an unused image failed"),
        }
    }
    if freed < to_free {
        tracing::warn!(
            wanted = to_free,
            freed,
            "image garbage collection could not free enough space"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, size: u64, tag: &str) -> Image {
        Image {
            id: id.into(),
            size,
            repo_tags: vec![tag.into()],
            ..Default::default()
        }
    }

    #[test]
    fn frees_down_to_the_low_threshold_from_the_high_one() {
        let fs = |available| FsStats {
            capacity: 1000,
            available,
            ..Default::default()
        };
        assert_eq!(amount_to_free(fs(160), 85, 80), None, "84% used");
        assert_eq!(
            amount_to_free(fs(150), 85, 80),
            Some(50),
            "85% used: to 80%"
        );
        assert_eq!(amount_to_free(fs(100), 85, 80), Some(100));
        assert_eq!(amount_to_free(fs(0), 100, 80), None, "100 disables");
    }

    #[test]
    fn removes_unused_unprotected_least_recently_used_first() {
        let t0 = Instant::now();
        let images = vec![
            image("sha256:pause", 1, "docker.io/library/pause:3.9"),
            image("sha256:busy", 10, "docker.io/library/busybox:1"),
            image("sha256:old", 20, "docker.io/library/old:1"),
            image("sha256:never", 30, "docker.io/library/never:1"),
            image("sha256:used", 40, "docker.io/library/used:1"),
        ];
        let mut tracker = Tracker::default();
        let using = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        // At t0 old is in use (by id), then busybox (by tag) at t0+60.
        tracker.detect(&images, &using(&["sha256:old", "sha256:used"]), t0);
        let t1 = t0 + Duration::from_secs(60);
        tracker.detect(
            &images,
            &using(&["docker.io/library/busybox:1", "sha256:used"]),
            t1,
        );
        let now_used = using(&["sha256:used"]);
        let protected = vec!["pause:3.9".to_string()];
        // Too young: nothing seen for 2 minutes yet at t1.
        assert!(plan(&images, &tracker, &now_used, &protected, t1, 100).is_empty());
        let t2 = t0 + Duration::from_secs(180);
        let ids = |p: Vec<(String, u64)>| p.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        let all = ids(plan(&images, &tracker, &now_used, &protected, t2, 1000));
        assert_eq!(all, ["sha256:never", "sha256:old", "sha256:busy"]);
        let some = ids(plan(&images, &tracker, &now_used, &protected, t2, 35));
        assert_eq!(some, ["sha256:never", "sha256:old"]);
        // Gone images are forgotten; pinned ones stay.
        let mut pinned = image("sha256:pinned", 5, "x:1");
        pinned.pinned = true;
        tracker.detect(&[pinned.clone()], &HashSet::new(), t2);
        assert_eq!(tracker.records.len(), 1);
        let t3 = t2 + MIN_AGE;
        assert!(plan(&[pinned], &tracker, &HashSet::new(), &[], t3, 100).is_empty());
    }
}
