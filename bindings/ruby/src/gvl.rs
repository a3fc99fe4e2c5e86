//! Running Rust without the GVL, so other Ruby threads run while one waits for a step or for the
//! engine. magnus has no safe wrapper for this; the one `unsafe` block of the binding is here.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

struct Call<F, R> {
    func: Option<F>,
    result: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn trampoline<F, R>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce() -> R,
{
    // SAFETY: `data` is the `Call` that `without_gvl` passed in and still owns on its stack.
    let call = unsafe { &mut *(data as *mut Call<F, R>) };
    if let Some(func) = call.func.take() {
        call.result = Some(catch_unwind(AssertUnwindSafe(func)));
    }
    std::ptr::null_mut()
}

/// Runs `func` with the GVL released. `func` must not touch any Ruby object. Waits are kept short
/// by the callers (no unblock function), so `Thread#kill` and signals are seen within one wait.
pub fn without_gvl<F, R>(func: F) -> R
where
    F: FnOnce() -> R,
{
    let mut call = Call {
        func: Some(func),
        result: None,
    };
    // SAFETY: the trampoline only runs `func` (which holds no Ruby values) and writes its result
    // into `call`, which outlives this call; panics are caught before they cross the C frame.
    unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(trampoline::<F, R>),
            &mut call as *mut Call<F, R> as *mut c_void,
            None,
            std::ptr::null_mut(),
        );
    }
    match call.result {
        Some(Ok(r)) => r,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        // Ruby skips the function only when the thread is being interrupted before it starts;
        // run it with the GVL held rather than lose the call.
        None => (call.func.take().expect("not yet run"))(),
    }
}
