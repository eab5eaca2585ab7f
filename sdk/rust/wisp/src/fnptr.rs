//! Function pointers as table indices: how a function crosses into another
//! process.
//!
//! On wasm32 a Rust function pointer is the function's index in the
//! module's function table, and every instance of a module has the same
//! table: so `f as usize as u32` made in one process names the same
//! function in any other process of the run (they all run the same
//! module). The crate sends such indices in spawn arguments (the spawned
//! function, the trampoline that decodes its argument) and in supervisor
//! child specs, and turns them back into function pointers with
//! [`fn_at`], the one place that does so.

/// The function whose table index is `index`, as a function pointer of
/// type `F`.
///
/// # Safety
/// `F` must be a function pointer type, and `index` must have been made
/// from a function pointer of exactly type `F` (`f as usize as u32`) by a
/// process running this module. A wrong index is undefined behaviour: the
/// `call_indirect` that calls the result traps when the function's *wasm*
/// signature differs, but two Rust function types can lower to the same
/// wasm signature (a zero-sized argument such as `Mailbox<M>` vanishes), so
/// the wrong function could be called with arguments of the wrong types.
pub(crate) unsafe fn fn_at<F: Copy>(index: u32) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>(), "wisp: fn_at needs a fn pointer type");
    // SAFETY: F is pointer-sized (checked above) and, by the caller's
    // promise, a function pointer type; on wasm32 a function pointer is a
    // table index held in a usize, and `index` is one for a function of
    // exactly this type.
    unsafe { std::mem::transmute_copy::<usize, F>(&(index as usize)) }
}
