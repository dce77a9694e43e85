//! What cells of one run share, made once on first use: each firmware's flash regions
//! (bootloader, partition table, app), each release's app as offered for update, each
//! scenario file's served chains (its own certificates minted once per run, not once per cell,
//! and once for the variants of one file a fault campaign runs).
//!
//! Cells side by side asking for the same thing wait for one another rather than making it
//! twice; a failure is not kept, so a retried cell tries again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use crate::run::cell::CellFlash;
use crate::run::serve::ScenarioChains;

/// A key's value once made; locked while it is being made.
type Slot<V> = Arc<Mutex<Option<Arc<V>>>>;

/// Values made once per key, shared by threads.
pub struct Memo<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash + Clone, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self { slots: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone, V> Memo<K, V> {
    /// The value of `key`, made with `make` if no earlier call made it.
    pub(crate) fn get_or_make<E>(&self, key: &K, make: impl FnOnce() -> Result<V, E>) -> Result<Arc<V>, E> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(key.clone()).or_default())
        };
        let mut value = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(made) = &*value {
            return Ok(Arc::clone(made));
        }
        let made = Arc::new(make()?);
        *value = Some(Arc::clone(&made));
        Ok(made)
    }
}

/// The run's shared inputs, keyed by firmware id, release id and scenario file.
#[derive(Default)]
pub struct RunCache {
    pub regions: Memo<String, CellFlash>,
    pub(crate) update_apps: Memo<String, crate::run::cell::OfferedApp>,
    pub chains: Memo<std::path::PathBuf, ScenarioChains>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn made_once_failures_not_kept_threads_wait_for_one_another() {
        let memo: Memo<&str, usize> = Memo::default();
        let made = AtomicUsize::new(0);
        let make = || -> Result<usize, ()> { Ok(made.fetch_add(1, Ordering::SeqCst) + 10) };
        assert_eq!(memo.get_or_make(&"b", || Err::<usize, _>("broken")).err(), Some("broken"));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| assert_eq!(*memo.get_or_make(&"a", make).unwrap(), 10));
            }
        });
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert_eq!(*memo.get_or_make(&"b", make).unwrap(), 11, "a failure is tried again");
    }
}
