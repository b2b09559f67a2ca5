//! The guest's global allocator: a bump arena in front of the system allocator.
//!
//! The host runs every call in a fresh instance and throws it away afterwards, so freeing memory
//! inside a call is wasted work, and so is the system allocator's bookkeeping: the tokenizer,
//! the parser and the printer make thousands of small allocations per query. Allocating from a
//! bump pointer in a static arena makes each of them a few instructions, and because the arena
//! is zero-initialised static memory it is part of the instance's initial memory, so a call
//! never has to grow memory either.
//!
//! Freeing the most recent allocation gives its bytes back (so a `String` or `Vec` that grows by
//! reallocation grows in place), other frees are no-ops. Once the arena is used up, allocations
//! go to the system allocator, so a pathological query costs memory but is still answered.
//!
//! Only compiled for `wasm32`: the native tests use the system allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use std::alloc::System;

/// Size of the arena. Validating a typical query uses well under 1 MiB; the rest of the
/// instance's memory cap stays available to the system allocator.
const ARENA_BYTES: usize = 4 << 20;

/// The arena's bytes and the offset of its first free byte.
#[repr(C, align(16))]
struct Arena {
    bytes: UnsafeCell<[u8; ARENA_BYTES]>,
    next: Cell<usize>,
}

// SAFETY: the guest is single-threaded (`wasm32-wasip2` without threads): the arena is never
// reached from two threads.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena {
    bytes: UnsafeCell::new([0; ARENA_BYTES]),
    next: Cell::new(0),
};

/// Bump allocation from [`ARENA`], falling back to [`System`].
pub struct BumpThenSystem;

impl BumpThenSystem {
    fn base() -> usize {
        ARENA.bytes.get() as usize
    }

    fn owns(ptr: *mut u8) -> bool {
        let at = ptr as usize;
        at >= Self::base() && at < Self::base() + ARENA_BYTES
    }

    /// Bytes `[start, start + size)` of the arena, aligned, or `None` when they do not fit.
    fn bump(layout: Layout) -> Option<*mut u8> {
        let base = Self::base();
        let start = (base + ARENA.next.get()).checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end > base + ARENA_BYTES {
            return None;
        }
        ARENA.next.set(end - base);
        Some(start as *mut u8)
    }

    /// Whether `ptr` (of `size` bytes) is the arena's most recent allocation.
    fn is_last(ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == Self::base() + ARENA.next.get()
    }
}

// SAFETY: arena blocks are disjoint (the bump pointer only moves back over the most recent
// block when it is freed or resized), aligned as asked, and never handed to `System`; pointers
// outside the arena came from `System` and go back to it.
unsafe impl GlobalAlloc for BumpThenSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::owns(ptr) {
            if Self::is_last(ptr, layout.size()) {
                ARENA.next.set(ptr as usize - Self::base());
            }
        } else {
            // SAFETY: not an arena block, so `System` allocated it.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::owns(ptr) {
            // SAFETY: not an arena block, so `System` allocated it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if Self::is_last(ptr, layout.size())
            && (ptr as usize)
                .checked_add(new_size)
                .is_some_and(|end| end <= Self::base() + ARENA_BYTES)
        {
            // The most recent block grows or shrinks in place.
            ARENA.next.set(ptr as usize + new_size - Self::base());
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `GlobalAlloc::realloc`'s contract makes this a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_size` is non-zero (it is larger than the old size).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the old size and do not overlap (the new one
            // was allocated while the old one was live).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}
