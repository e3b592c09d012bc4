//! Giving freed heap pages back to the system once a burst of work is over.
//!
//! A translation builds its whole output again (at 10,000 routes some 200 MiB of
//! IR, status and protos, transiently) and frees it, and an Envoy's first sync
//! encodes every resource into responses that are freed once sent. glibc keeps
//! those pages in its arenas, so without this the process would stay near its
//! peak for good: 9 MiB above steady state at 10,000 routes after one Envoy's
//! first sync alone.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Notify;

/// How long gantry must have been idle (no translation, no ACK) before freed
/// memory is given back: trimming locks the allocator's arenas, which would hold
/// up the pushes of a change still under way.
const QUIET_FOR: Duration = Duration::from_millis(500);

/// Work that frees memory, which the releaser waits to see the end of.
/// Process-wide, as the allocator is.
static ACTIVITY: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Says that work which frees memory has just happened. Cheap; call it freely.
pub fn note_activity() {
    ACTIVITY.notify_one();
}

/// Gives freed memory back each time activity has been followed by [`QUIET_FOR`]
/// without any. Runs for the life of the process; spawn it once.
pub async fn release_when_quiet() {
    loop {
        ACTIVITY.notified().await;
        while tokio::time::timeout(QUIET_FOR, ACTIVITY.notified())
            .await
            .is_ok()
        {}
        release_free_memory().await;
    }
}

async fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free memory to the system.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}
