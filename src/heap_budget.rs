//! An allocation budget for one device's mbedTLS: the heap a firmware leaves for its TLS
//! connection, counted against the real allocations of the linked mbedTLS.
//!
//! The `mbedtls` crate builds mbedTLS without `MBEDTLS_PLATFORM_MEMORY`, so the library calls
//! the C library's `calloc` and `free` directly, one pair for the whole process, and twins are
//! threads of one process. The package's build script links its binaries, tests and
//! benchmarks with `--wrap=calloc --wrap=free --wrap=realloc`: every `calloc`, `free` and
//! `realloc` of the process comes here ([`__wrap_calloc`], [`__wrap_free`],
//! [`__wrap_realloc`]) and goes on to glibc's `__libc_calloc`, `__libc_free` and
//! `__libc_realloc` (not `__real_*`, so a binary linked without the option still links; it
//! then has no budget, which `in_effect` tells).
//!
//! A `HeapBudget` counts only while a thread has entered it (the twin enters it around its
//! device's calls into mbedTLS and suspends it in the callbacks that run the rig's own code).
//! A `calloc` that would take the budget past its limit returns NULL, as the ESP32's heap does
//! when it is exhausted, and mbedTLS answers with its own error (`MBEDTLS_ERR_SSL_ALLOC_FAILED`,
//! `MBEDTLS_ERR_X509_ALLOC_FAILED`, ...). The pointers a budget granted are kept in a fixed
//! table (nothing is allocated inside the allocator), so a `free` on any thread gives their
//! bytes back.
//!
//! This is the library's one piece of process-wide state: the table of granted pointers and
//! the budgets' counters. A `free` while no budget holds a pointer costs one relaxed atomic
//! load.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// How many budgets can exist at once (one per device connection that has one).
pub(crate) const MAX_BUDGETS: usize = 64;
/// Slots of the table of granted pointers; at most three quarters are used.
const TABLE_SLOTS: usize = 1 << 16;
const TABLE_MAX_LIVE: usize = TABLE_SLOTS / 4 * 3;
/// No budget entered on this thread.
const NONE: usize = usize::MAX;

thread_local! {
    /// The budget this thread's `calloc`s count against: const-initialised and without a
    /// destructor, so reading it never allocates and works while a thread is torn down.
    static ACTIVE: Cell<usize> = const { Cell::new(NONE) };
}

/// Pointers granted under a budget and not yet freed, in all budgets: the `free` fast path.
static LIVE: AtomicUsize = AtomicUsize::new(0);

static STATE: Mutex<State> = Mutex::new(State::new());

/// What a budget has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// The limit, in bytes.
    pub(crate) limit: usize,
    /// Bytes granted and not yet freed.
    pub(crate) used: usize,
    /// The most ever in use at once.
    pub(crate) peak: usize,
    /// The size of the first request refused, if one was.
    pub(crate) refused: Option<usize>,
    /// Whether an allocation was granted that the table could not hold: the counts are then
    /// too low, and what was emulated cannot be trusted.
    pub(crate) untracked: bool,
}

/// Why a budget could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeapBudgetError {
    /// This binary was linked without the `calloc`/`free` wrappers (the package's build
    /// script adds them to its own binaries, tests and benchmarks).
    #[error("this binary does not route calloc and free through the budget (linked without --wrap=calloc,--wrap=free)")]
    NotInEffect,
    /// Every budget slot is taken.
    #[error("more than {MAX_BUDGETS} allocation budgets at once")]
    TooMany,
    /// The table of granted pointers was full: an allocation went uncounted, so what the
    /// budget decided cannot be trusted.
    #[error("more allocations alive under budgets than the table holds")]
    Untracked,
}

/// One device's allocation budget. Dropping it ends the budget; pointers it granted that are
/// still alive give their bytes back when they are freed.
#[derive(Debug)]
pub(crate) struct HeapBudget {
    slot: usize,
}

impl HeapBudget {
    /// A budget of `limit` bytes; refused when the wrappers are not in effect.
    pub(crate) fn new(limit: usize) -> Result<HeapBudget, HeapBudgetError> {
        if !in_effect() {
            return Err(HeapBudgetError::NotInEffect);
        }
        HeapBudget::claim(limit)
    }

    /// A budget without the check that the wrappers are in effect (the check's own probe).
    fn claim(limit: usize) -> Result<HeapBudget, HeapBudgetError> {
        let mut state = lock();
        let slot = state.budgets.iter().position(|b| !b.claimed).ok_or(HeapBudgetError::TooMany)?;
        state.budgets[slot] = Budget { claimed: true, owned: true, limit, ..Budget::EMPTY };
        Ok(HeapBudget { slot })
    }

    /// Counts this thread's `calloc`s against the budget until the guard is dropped.
    pub(crate) fn enter(&self) -> Entered {
        Entered { previous: ACTIVE.with(|active| active.replace(self.slot)) }
    }

    /// What the budget has counted so far.
    pub(crate) fn usage(&self) -> Usage {
        let state = lock();
        let b = &state.budgets[self.slot];
        let refused = (b.refused != 0).then_some(b.refused);
        Usage { limit: b.limit, used: b.used, peak: b.peak, refused, untracked: b.untracked }
    }
}

impl Drop for HeapBudget {
    fn drop(&mut self) {
        let mut state = lock();
        let b = &mut state.budgets[self.slot];
        b.owned = false;
        if b.live == 0 {
            *b = Budget::EMPTY;
        }
    }
}

/// A thread inside a budget; dropping it returns to what the thread counted before.
#[derive(Debug)]
#[must_use = "the budget counts only while the guard lives"]
pub(crate) struct Entered {
    previous: usize,
}

impl Drop for Entered {
    fn drop(&mut self) {
        ACTIVE.with(|active| active.set(self.previous));
    }
}

/// Stops counting this thread's allocations until the guard is dropped (the rig's own code
/// called back from inside mbedTLS).
pub(crate) fn suspend() -> Entered {
    Entered { previous: ACTIVE.with(|active| active.replace(NONE)) }
}

/// Whether `calloc` and `free` go through the budget in this binary: a probe allocation under
/// a budget of zero bytes must be refused. Probed once.
pub(crate) fn in_effect() -> bool {
    static PROBED: OnceLock<bool> = OnceLock::new();
    // Through an opaque pointer: the compiler would otherwise take the allocation for one that
    // cannot fail, and drop it.
    *PROBED.get_or_init(|| refuses_under_zero_budget(std::hint::black_box(libc::calloc)))
}

/// Whether `calloc` refuses a byte under a budget of zero bytes.
fn refuses_under_zero_budget(calloc: unsafe extern "C" fn(usize, usize) -> *mut c_void) -> bool {
    let Ok(probe) = HeapBudget::claim(0) else {
        return false;
    };
    let entered = probe.enter();
    // SAFETY: a C library calloc; the pointer is freed once below if it was granted.
    let granted = std::hint::black_box(unsafe { calloc(1, 1) });
    drop(entered);
    if granted.is_null() {
        return true;
    }
    // SAFETY: as above.
    unsafe { libc::free(granted) };
    false
}

/// One budget's counters.
#[derive(Clone, Copy, Debug)]
struct Budget {
    claimed: bool,
    /// Its [`HeapBudget`] is alive; otherwise the slot is freed with its last pointer.
    owned: bool,
    limit: usize,
    used: usize,
    peak: usize,
    live: usize,
    /// The first refused request's size; 0 while none was (a request of 0 bytes always fits).
    refused: usize,
    untracked: bool,
}

impl Budget {
    const EMPTY: Budget =
        Budget { claimed: false, owned: false, limit: 0, used: 0, peak: 0, live: 0, refused: 0, untracked: false };
}

/// A granted pointer: its address (0 for an empty slot), size and budget.
#[derive(Clone, Copy, Debug)]
struct Entry {
    address: usize,
    size: usize,
    budget: usize,
}

impl Entry {
    const EMPTY: Entry = Entry { address: 0, size: 0, budget: 0 };
}

/// The budgets and the open-addressing table (linear probing, backward-shift deletion) of the
/// pointers they granted.
struct State {
    budgets: [Budget; MAX_BUDGETS],
    table: [Entry; TABLE_SLOTS],
    live: usize,
}

impl State {
    const fn new() -> State {
        State { budgets: [Budget::EMPTY; MAX_BUDGETS], table: [Entry::EMPTY; TABLE_SLOTS], live: 0 }
    }

    fn home(address: usize) -> usize {
        // Fibonacci hashing of the address without its alignment bits.
        (address >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - TABLE_SLOTS.trailing_zeros())
    }

    /// Records `address`; false when the table is full.
    fn insert(&mut self, address: usize, size: usize, budget: usize) -> bool {
        if self.live >= TABLE_MAX_LIVE {
            return false;
        }
        let mut i = State::home(address);
        while self.table[i].address != 0 {
            i = (i + 1) % TABLE_SLOTS;
        }
        self.table[i] = Entry { address, size, budget };
        self.live += 1;
        true
    }

    /// Removes `address` and returns its entry, if it was granted under a budget.
    fn remove(&mut self, address: usize) -> Option<Entry> {
        let mut i = State::home(address);
        loop {
            let entry = self.table[i];
            if entry.address == 0 {
                return None;
            }
            if entry.address == address {
                break;
            }
            i = (i + 1) % TABLE_SLOTS;
        }
        let found = self.table[i];
        // Backward shift: move later entries of the run into the hole they may not skip.
        let mut hole = i;
        let mut j = (i + 1) % TABLE_SLOTS;
        while self.table[j].address != 0 {
            let home = State::home(self.table[j].address);
            // Whether `home` lies cyclically in (hole, j]: then the entry stays.
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.table[hole] = self.table[j];
                hole = j;
            }
            j = (j + 1) % TABLE_SLOTS;
        }
        self.table[hole] = Entry::EMPTY;
        self.live -= 1;
        Some(found)
    }

    /// Counts a grant or refuses it: whether `size` more bytes fit in `budget`.
    fn reserve(&mut self, budget: usize, size: usize) -> bool {
        let b = &mut self.budgets[budget];
        if b.used.checked_add(size).is_none_or(|total| total > b.limit) {
            if b.refused == 0 {
                b.refused = size;
            }
            return false;
        }
        true
    }

    fn granted(&mut self, budget: usize, address: usize, size: usize) {
        if self.insert(address, size, budget) {
            let b = &mut self.budgets[budget];
            b.used += size;
            b.peak = b.peak.max(b.used);
            b.live += 1;
            LIVE.fetch_add(1, Ordering::Relaxed);
        } else {
            self.budgets[budget].untracked = true;
        }
    }

    fn freed(&mut self, address: usize) {
        let Some(entry) = self.remove(address) else {
            return;
        };
        LIVE.fetch_sub(1, Ordering::Relaxed);
        let b = &mut self.budgets[entry.budget];
        b.used -= entry.size;
        b.live -= 1;
        if b.live == 0 && !b.owned {
            *b = Budget::EMPTY;
        }
    }
}

fn lock() -> MutexGuard<'static, State> {
    // Nothing panics while the lock is held.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    /// glibc's own `calloc`, exported for exactly this use.
    fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
    /// glibc's own `free`.
    fn __libc_free(pointer: *mut c_void);
    /// glibc's own `realloc`.
    fn __libc_realloc(pointer: *mut c_void, size: usize) -> *mut c_void;
}

/// `calloc` for the whole process (`--wrap=calloc`): counted against the thread's budget, if
/// it has entered one.
///
/// # Safety
///
/// As `calloc`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_calloc(count: usize, size: usize) -> *mut c_void {
    let budget = ACTIVE.try_with(Cell::get).unwrap_or(NONE);
    let bytes = count.checked_mul(size);
    let (Some(bytes), true) = (bytes, budget != NONE) else {
        // SAFETY: the caller's calloc.
        return unsafe { __libc_calloc(count, size) };
    };
    let mut state = lock();
    if !state.reserve(budget, bytes) {
        return std::ptr::null_mut();
    }
    // SAFETY: the caller's calloc.
    let pointer = unsafe { __libc_calloc(count, size) };
    if !pointer.is_null() {
        state.granted(budget, pointer as usize, bytes);
    }
    pointer
}

/// `free` for the whole process (`--wrap=free`): gives a budget its bytes back when it granted
/// the pointer.
///
/// # Safety
///
/// As `free`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_free(pointer: *mut c_void) {
    if LIVE.load(Ordering::Relaxed) != 0 && !pointer.is_null() {
        // Out of the table before the memory can be handed out again.
        lock().freed(pointer as usize);
    }
    // SAFETY: the caller's free.
    unsafe { __libc_free(pointer) };
}

/// `realloc` for the whole process (`--wrap=realloc`): a pointer a budget granted gives its
/// bytes back before it moves (mbedTLS never reallocates; the rig's own code inside a budget
/// might), and the new block is not counted.
///
/// # Safety
///
/// As `realloc`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_realloc(pointer: *mut c_void, size: usize) -> *mut c_void {
    if LIVE.load(Ordering::Relaxed) != 0 && !pointer.is_null() {
        lock().freed(pointer as usize);
    }
    // SAFETY: the caller's realloc.
    unsafe { __libc_realloc(pointer, size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Box<State> {
        // SAFETY: every field of `State` is an integer or a bool, for which zero is valid (and
        // stands for an empty slot); the table is large, so it is built on the heap.
        let mut state: Box<State> = unsafe { Box::new_zeroed().assume_init() };
        state.budgets[0] = Budget { claimed: true, owned: true, limit: 100, ..Budget::EMPTY };
        state
    }

    #[test]
    fn a_budget_refuses_what_would_exceed_it_and_gets_freed_bytes_back() {
        let mut state = table();
        assert!(state.reserve(0, 60));
        state.granted(0, 0x1000, 60);
        assert!(!state.reserve(0, 41));
        assert_eq!(state.budgets[0].refused, 41);
        assert!(state.reserve(0, 40));
        state.granted(0, 0x2000, 40);
        assert_eq!((state.budgets[0].used, state.budgets[0].peak), (100, 100));
        state.freed(0x1000);
        state.freed(0x3000); // never granted: nothing changes
        assert_eq!((state.budgets[0].used, state.budgets[0].peak, state.budgets[0].live), (40, 100, 1));
        // The first refusal stays.
        assert!(!state.reserve(0, 61));
        assert_eq!(state.budgets[0].refused, 41);
        state.freed(0x2000);
        assert_eq!(state.live, 0);
    }

    #[test]
    fn an_ended_budget_is_freed_with_its_last_pointer() {
        let mut state = table();
        state.granted(0, 0x1000, 10);
        state.budgets[0].owned = false;
        state.freed(0x1000);
        assert!(!state.budgets[0].claimed);
    }

    #[test]
    fn colliding_addresses_survive_removal_in_any_order() {
        let mut state = table();
        state.budgets[0].limit = usize::MAX;
        // Addresses that share a home slot, and their neighbours, wrapping at the table's end.
        let mut colliding = Vec::new();
        let mut address = 0x10usize;
        while colliding.len() < 40 {
            if State::home(address) >= TABLE_SLOTS - 3 {
                colliding.push(address);
            }
            address += 0x10;
        }
        for (n, a) in colliding.iter().enumerate() {
            state.granted(0, *a, n + 1);
        }
        for a in colliding.iter().step_by(3).chain(colliding.iter().skip(1).step_by(3)) {
            assert!(state.remove(*a).is_some(), "{a:#x}");
        }
        for a in colliding.iter().skip(2).step_by(3) {
            assert!(state.remove(*a).is_some(), "{a:#x}");
        }
        assert_eq!(state.live, 0);
        assert!(state.table.iter().all(|e| e.address == 0));
    }

    #[test]
    fn a_full_table_marks_the_budget_untracked() {
        let mut state = table();
        state.budgets[0].limit = usize::MAX;
        state.live = TABLE_MAX_LIVE;
        state.granted(0, 0x1000, 8);
        assert!(state.budgets[0].untracked);
        assert_eq!(state.budgets[0].used, 0);
    }

    /// A pointer that can cross to another thread (the test's frees there).
    struct Granted(*mut c_void);
    // SAFETY: the pointer is only freed, once, by the thread it is sent to.
    unsafe impl Send for Granted {}

    impl Granted {
        fn free(self) {
            // SAFETY: granted by calloc and freed once, here.
            unsafe { libc::free(self.0) };
        }
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_package_s_own_tests_have_the_wrappers_and_glibc_s_own_calloc_is_told_apart() {
        assert!(in_effect());
        // What a binary linked without the wrappers calls: glibc's calloc, which no budget
        // refuses.
        assert!(!refuses_under_zero_budget(__libc_calloc));
        assert!(refuses_under_zero_budget(libc::calloc));
    }

    #[test]
    fn callocs_count_only_inside_the_budget_and_frees_on_another_thread_give_them_back() {
        let budget = HeapBudget::new(1000).unwrap();
        let inside = budget.enter();
        // SAFETY: calloc; freed below.
        let a = unsafe { libc::calloc(10, 60) };
        let outside = suspend();
        // SAFETY: as above.
        let uncounted = unsafe { libc::calloc(1, 4000) };
        drop(outside);
        // SAFETY: as above.
        let refused = unsafe { libc::calloc(1, 401) };
        // SAFETY: as above.
        let b = unsafe { libc::calloc(1, 400) };
        drop(inside);
        assert!(!a.is_null() && !uncounted.is_null() && refused.is_null() && !b.is_null());
        assert_eq!(budget.usage(), Usage { limit: 1000, used: 1000, peak: 1000, refused: Some(401), untracked: false });
        let (a, b) = (Granted(a), Granted(b));
        std::thread::spawn(move || {
            a.free();
            b.free();
        })
        .join()
        .unwrap();
        // SAFETY: as above.
        unsafe { libc::free(uncounted) };
        assert_eq!(budget.usage().used, 0);
        assert_eq!(budget.usage().peak, 1000);
    }

    #[test]
    fn a_granted_pointer_moved_by_realloc_gives_its_bytes_back() {
        let budget = HeapBudget::new(100).unwrap();
        let entered = budget.enter();
        // SAFETY: calloc; reallocated and freed below.
        let p = unsafe { libc::calloc(1, 64) };
        drop(entered);
        assert_eq!(budget.usage().used, 64);
        // SAFETY: granted above; the new block replaces it.
        let q = unsafe { libc::realloc(p, 4096) };
        assert!(!q.is_null());
        assert_eq!(budget.usage().used, 0);
        // SAFETY: from realloc, freed once.
        unsafe { libc::free(q) };
    }

    #[test]
    fn a_pointer_freed_after_its_budget_ended_frees_the_slot() {
        let budget = HeapBudget::new(100).unwrap();
        let slot = budget.slot;
        let entered = budget.enter();
        // SAFETY: calloc; freed below.
        let p = unsafe { libc::calloc(1, 16) };
        drop(entered);
        drop(budget);
        assert!(lock().budgets[slot].claimed, "still holds a pointer");
        // SAFETY: granted above, freed once.
        unsafe { libc::free(p) };
        assert!(!lock().budgets[slot].claimed);
    }
}
