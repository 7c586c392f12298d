//! Delete with the reference's auto-GC cascade, made safe: the whole cascade is worked out
//! first (a set, so a node reached twice is handled once), the index is updated and saved, and
//! only then are files unlinked. A crash or failure after the save leaves only unreferenced
//! files, which the next `gc` removes; `index.json` never names a file that is gone.

use crate::manifest_info::subject_of;
use crate::store::Store;
use oci_spec::image::Descriptor;
use std::collections::{HashSet, VecDeque};
use store_core::descriptor::{self, is_manifest};
use store_core::digest::ValidDigest;
use store_core::{Error, ErrorKind, Result};

impl Store {
    /// Deletes `target` (and, with auto GC, its cascade) while holding the gate exclusively.
    pub(crate) async fn delete_unlocked(&self, target: &Descriptor) -> Result<()> {
        let shared = &self.shared;
        let digest = descriptor::validate(target)?;
        if shared.stat(&digest)?.is_none() {
            return Err(Error::not_found(format!(
                "{} ({})",
                target.digest(),
                target.media_type()
            )));
        }
        let doomed = if self.options.auto_gc {
            self.cascade(target).await?
        } else {
            vec![target.clone()]
        };

        let mut removed_refs = Vec::new();
        for node in &doomed {
            removed_refs.extend(shared.index.forget_digest(node.digest().as_ref()));
        }
        if !removed_refs.is_empty() {
            if let Err(e) = self.index_changed().await {
                // Nothing was unlinked yet: put the references back so memory matches disk.
                shared.index.restore(removed_refs);
                return Err(e);
            }
        }
        for node in &doomed {
            shared.graph.remove(node);
        }
        let digests: Vec<ValidDigest> = doomed
            .iter()
            .filter_map(|node| ValidDigest::from_digest(node.digest()).ok())
            .collect();
        let mut first_error = None;
        for result in shared.blobs.remove_many(&digests).await {
            match result {
                Ok(()) => {}
                // A cascaded node that was never on disk (a child listed by an index whose
                // blob the layout does not hold) has nothing to remove.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        shared.blobs.sync_dirs().await?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Everything deleting `target` removes: the target, the referrers of every deleted
    /// manifest (tagged or not, as the reference does), and every present node left with no
    /// predecessor that carries no tag. Each node once, in the order found.
    async fn cascade(&self, target: &Descriptor) -> Result<Vec<Descriptor>> {
        let shared = &self.shared;
        let mut doomed: Vec<Descriptor> = Vec::new();
        let mut doomed_set: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<Descriptor> = VecDeque::from([target.clone()]);
        loop {
            while let Some(head) = queue.pop_front() {
                if !doomed_set.insert(head.digest().to_string()) {
                    continue;
                }
                if is_manifest(&head) {
                    for predecessor in shared.graph.predecessors(&head) {
                        if doomed_set.contains(predecessor.digest().as_ref()) {
                            continue;
                        }
                        if subject_of(shared, &predecessor).await?.as_deref()
                            == Some(head.digest().as_ref())
                        {
                            queue.push_back(predecessor);
                        }
                    }
                }
                doomed.push(head);
            }
            // Danglings: present successors all of whose predecessors are doomed. Checked once
            // the queue is empty, so the order in which parents were found does not matter.
            let mut found = false;
            for node in &doomed {
                for child in shared
                    .graph
                    .successors(node.digest().as_ref())
                    .unwrap_or_default()
                {
                    let key = child.digest().as_ref();
                    if doomed_set.contains(key) || shared.index.resolver.is_tagged(key) {
                        continue;
                    }
                    let Some(present) = shared.graph.get(key) else {
                        continue;
                    };
                    let orphaned = shared
                        .graph
                        .predecessors(&present)
                        .iter()
                        .all(|p| doomed_set.contains(p.digest().as_ref()));
                    if orphaned && !queue.iter().any(|q| q.digest() == present.digest()) {
                        queue.push_back(present);
                        found = true;
                    }
                }
            }
            if !found {
                break;
            }
        }
        Ok(doomed)
    }
}
