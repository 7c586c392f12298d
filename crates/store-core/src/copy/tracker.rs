//! Which nodes a copy has claimed, and how each ended.
//!
//! The first task to reach a node owns it; every later one waits for the owner's outcome
//! without holding a concurrency slot. Nodes are told apart as oras-go does, by media
//! type, digest and size: the same bytes reached as a manifest and as a plain blob are two nodes
//! (the second push then meets `AlreadyExists`, which is tolerated).

use crate::error::{Error, Result};
use oci_spec::image::Descriptor;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// How a node that completed without error was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Fetched and pushed (or the destination already had it when the push arrived).
    Copied,
    /// Mounted by the destination from another repository; not fetched.
    Mounted,
    /// Found in the destination; not pushed.
    Existed,
    /// `pre_copy` asked to skip it.
    SkippedByHook,
}

#[derive(Debug, Clone)]
pub(crate) enum State {
    Pending,
    Done(Outcome),
    Failed(Error),
}

/// The identity of a node: media type, digest, size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NodeKey(String, String, u64);

impl NodeKey {
    pub(crate) fn of(desc: &Descriptor) -> Self {
        NodeKey(
            desc.media_type().to_string(),
            desc.digest().to_string(),
            desc.size(),
        )
    }
}

/// The result of [`Tracker::claim`].
pub(crate) enum Claim {
    /// This caller owns the node and must [`Owner::finish`] it.
    Owner(Owner),
    /// Another caller owns it; [`Tracker::wait`] for its outcome.
    Wait(watch::Receiver<State>),
}

/// The right and duty to report a node's outcome. Dropped unfinished (the copy was cancelled),
/// it leaves waiters with an error.
pub(crate) struct Owner(watch::Sender<State>);

impl Owner {
    /// Publishes the node's outcome to every waiter.
    pub(crate) fn finish(self, result: &Result<Outcome>) {
        let state = match result {
            Ok(outcome) => State::Done(*outcome),
            Err(err) => State::Failed(err.clone()),
        };
        self.0.send_replace(state);
    }
}

/// Every node claimed so far.
#[derive(Default)]
pub(crate) struct Tracker {
    nodes: Mutex<HashMap<NodeKey, watch::Receiver<State>>>,
}

impl Tracker {
    /// Claims `desc`: the first caller becomes its owner, later ones get a receiver to wait on.
    pub(crate) fn claim(&self, desc: &Descriptor) -> Claim {
        let key = NodeKey::of(desc);
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = nodes.get(&key) {
            return Claim::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(State::Pending);
        nodes.insert(key, rx);
        Claim::Owner(Owner(tx))
    }

    /// Waits until the owner of a node finishes it.
    ///
    /// Errors: the owner's error (a clone), or `Io` ("cancelled") when the owner was dropped
    /// unfinished.
    pub(crate) async fn wait(mut rx: watch::Receiver<State>) -> Result<Outcome> {
        let state = match rx.wait_for(|s| !matches!(s, State::Pending)).await {
            Ok(state) => state.clone(),
            Err(_) => {
                return Err(Error::io(
                    "copy",
                    std::io::Error::other("cancelled: the task copying a shared node stopped"),
                ))
            }
        };
        match state {
            State::Done(outcome) => Ok(outcome),
            State::Failed(err) => Err(err),
            State::Pending => Err(Error::io(
                "copy",
                std::io::Error::other("a shared node ended without an outcome"),
            )),
        }
    }

    /// How `desc` ended, if it was claimed and finished without error.
    pub(crate) fn outcome(&self, desc: &Descriptor) -> Option<Outcome> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = match &*nodes.get(&NodeKey::of(desc))?.borrow() {
            State::Done(outcome) => Some(*outcome),
            _ => None,
        };
        outcome
    }
}
