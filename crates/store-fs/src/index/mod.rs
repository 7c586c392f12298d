//! `index.json`, from bytes to memory and back: [`codec`] (parsing and encoding the file),
//! [`held`] (one entry, compact), [`state`] (what it says, held in memory), [`merge`] (the
//! three-way merge with other writers' changes), [`sync`] (reading and writing the file under
//! [`lock`], the cross-process lock).
//!
//! Dependencies run one way: `sync` → `merge` → `state` → `codec` → `held`; `lock` stands alone.

pub(crate) mod codec;
pub(crate) mod held;
pub(crate) mod lock;
pub(crate) mod merge;
pub(crate) mod state;
pub(crate) mod sync;
