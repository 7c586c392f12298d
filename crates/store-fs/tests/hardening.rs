//! Hardening: regression tests for what an adversarial probe of the layout store broke. Each
//! module covers one kind of bad input or bad moment: symbolic links planted in the layout,
//! special files where files should be, deletes and gc beside pushes and fscks, cancelled
//! pushes, crashes under deferred autosave, hostile or huge `index.json` files, and failed
//! writes. They use the public API only.
//!
//! A test of a hang runs the operation on a thread of its own, with a runtime of its own, and
//! fails after [`util::GUARD`]; the guard only decides anything while the hang exists.

mod common;

#[path = "hardening/util.rs"]
mod util;

#[path = "hardening/symlinks.rs"]
mod symlinks;

#[path = "hardening/special_files.rs"]
mod special_files;

#[path = "hardening/in_flight.rs"]
mod in_flight;

#[path = "hardening/stalled_push.rs"]
mod stalled_push;

#[path = "hardening/fsck_beside_deletes.rs"]
mod fsck_beside_deletes;

#[path = "hardening/cancelled_push.rs"]
mod cancelled_push;

#[path = "hardening/deferred_delete.rs"]
mod deferred_delete;

#[path = "hardening/index_load.rs"]
mod index_load;

#[path = "hardening/failed_writes.rs"]
mod failed_writes;

#[path = "hardening/deleted_mid_read.rs"]
mod deleted_mid_read;
